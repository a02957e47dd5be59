#!/usr/bin/env bash
# Builds the .deb from a build folder, unpacks it into a scratch root (the real system is not
# touched), and checks what a user gets: the exact file list, the control fields, the desktop entry,
# and that the installed programs run: `windowpane-cli info` on the installed demo model and
# `windowpane --help`.
# Usage: tests/package/deb_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$(cd "$1" && pwd)"
source="$(cd "$2" && pwd)"
work="$build/package_test"
root="$work/root"
model_rel="usr/share/windowpane/models/windowpane-demo-gemma2"

fail() { echo "FAIL: $*" >&2; exit 1; }

if ! command -v dpkg-deb >/dev/null; then
    echo "dpkg-deb not found: not a Debian system, skipping"
    exit 77
fi

rm -rf "$work"
mkdir -p "$work"
echo "== cpack -G DEB"
(cd "$build" && cpack -G DEB -B "$work/out" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack"; }
debs=("$work"/out/windowpane_*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || fail "expected one windowpane_*.deb in $work/out, found: ${debs[*]}"
deb="${debs[0]}"
echo "$deb"

echo "== control fields"
dpkg-deb -I "$deb" | tee "$work/info.txt"
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = windowpane ] || fail "Package is '$(field Package)'"
version="$(sed -n 's/^project(windowpane VERSION \([0-9.]*\).*/\1/p' "$source/CMakeLists.txt")"
[ "$(field Version)" = "$version" ] || fail "Version is '$(field Version)', the project's is '$version'"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"
[ -n "$(field Description)" ] || fail "no Description"
depends="$(field Depends)"
# The package names in Depends, one a line, without versions or alternatives' bars.
depends_names="$(tr ',|' '\n\n' <<<"$depends" | sed 's/(.*)//; s/ //g' | sed '/^$/d')"
# What the programs link (dpkg-shlibdeps) and the SQLite plugin Qt loads at run time.
for dep in libc6 libstdc++6 libqt6widgets6 libqt6svg6 libqt6sql6 libqt6sql6-sqlite libsentencepiece0 \
           libpcre2-8-0 libutf8proc2 'libopenblas0 libblas3'; do
    found=""
    for alt in $dep; do grep -qxF "$alt" <<<"$depends_names" && found=1; done
    [ -n "$found" ] || fail "Depends lacks $dep: $depends"
done

echo "== file list"
# Regular files only, without the leading "./"; then exactly the expected set.
dpkg-deb -c "$deb" | awk '$1 ~ /^-/ { sub(/^\.\//, "", $6); print $6 }' | sort >"$work/files.txt"
{
    printf '%s\n' usr/bin/windowpane usr/bin/windowpane-cli \
        usr/share/applications/windowpane.desktop \
        usr/share/icons/hicolor/scalable/apps/windowpane.svg \
        usr/share/icons/hicolor/256x256/apps/windowpane.png
    (cd "$source/resources/models/windowpane-demo-gemma2" && find . -type f | sed "s|^\./|$model_rel/|")
} | sort >"$work/expected.txt"
for f in config.json model.safetensors tokenizer.model tokenizer_config.json; do
    grep -qxF "$model_rel/$f" "$work/files.txt" || fail "the demo model lacks $f"
done
diff -u "$work/expected.txt" "$work/files.txt" || fail "the package's files differ from the expected list (- expected, + packed)"
if dpkg-deb -c "$deb" | awk '{ print $2 }' | grep -v '^root/root$' >/dev/null; then
    fail "files not owned by root/root"
fi

echo "== unpack into $root"
dpkg-deb -x "$deb" "$root"
cmp "$root/$model_rel/model.safetensors" "$source/resources/models/windowpane-demo-gemma2/model.safetensors" \
    || fail "installed model weights differ from resources/"
for exe in windowpane windowpane-cli; do
    ! ldd "$root/usr/bin/$exe" | grep 'not found' || fail "$exe: unresolved libraries"
done

if command -v desktop-file-validate >/dev/null; then
    echo "== desktop-file-validate"
    desktop-file-validate "$root/usr/share/applications/windowpane.desktop" || fail "desktop file"
else
    echo "desktop-file-validate not found: desktop file not validated"
fi
grep -qx 'Exec=windowpane %f' "$root/usr/share/applications/windowpane.desktop" || fail "desktop Exec"
grep -qx 'Icon=windowpane' "$root/usr/share/applications/windowpane.desktop" || fail "desktop Icon"

echo "== windowpane-cli info"
"$root/usr/bin/windowpane-cli" info --model "$root/$model_rel" | tee "$work/cli_info.txt" \
    || fail "windowpane-cli info exited with an error"
grep -Eq "^model +$root/$model_rel\$" "$work/cli_info.txt" || fail "info does not name the installed model"
grep -Eq '^family +gemma2$' "$work/cli_info.txt" || fail "info: family is not gemma2"
grep -Eq '^layers +[0-9]+$' "$work/cli_info.txt" || fail "info: no layer count"

echo "== windowpane --help"
QT_QPA_PLATFORM=offscreen "$root/usr/bin/windowpane" --help >"$work/gui_help.txt" 2>&1 \
    || { cat "$work/gui_help.txt"; fail "windowpane --help exited with an error"; }
cat "$work/gui_help.txt"
grep -q -- '--model <PATH>' "$work/gui_help.txt" || fail "windowpane --help does not describe --model"

echo "package test passed: $deb"
