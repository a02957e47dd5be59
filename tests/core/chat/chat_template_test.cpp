// Chat templates: every reference rendering of the shared tokenizers, the Jinja features real
// templates use, the sandbox limits, error reporting, and loading templates and special tokens
// from model folders.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <string>
#include <vector>

#include "test_support.h"
#include "wp/chat/chat_template.h"
#include "wp/error.h"

namespace wp::test {
namespace {

using nlohmann::ordered_json;
using testing::HasSubstr;

std::string render(const std::string& tmpl, const ordered_json& ctx = ordered_json::object(),
                   const TemplateLimits& limits = {}) {
    return ChatTemplate(tmpl).render(ctx, limits);
}

// The message of the TemplateError that parsing or rendering throws.
std::string error_of(const std::string& tmpl, const ordered_json& ctx = ordered_json::object(),
                     const TemplateLimits& limits = {}) {
    try {
        render(tmpl, ctx, limits);
    } catch (const TemplateError& e) {
        return e.what();
    }
    return "no error";
}

// ---- Reference renderings ----

// The render context of a chat_cases.json case (see shared/tokenizers/README.md).
ordered_json case_context(const fs::path& folder, const ordered_json& c) {
    ordered_json ctx = ChatTemplate::special_tokens_context(folder);
    ctx["messages"] = c.at("messages");
    ctx["add_generation_prompt"] = c.at("add_generation_prompt");
    ctx["tools"] = c.contains("tools") ? c["tools"] : ordered_json(nullptr);
    ctx["documents"] = nullptr;
    return ctx;
}

const ordered_json& find_case(const ordered_json& cases, const std::string& id) {
    for (const auto& c : cases)
        if (c.at("id") == id) return c;
    throw std::runtime_error("no chat case " + id);
}

ordered_json chat_cases(const std::string& folder) {
    return ordered_json::parse(read_text(shared_dir() / "tokenizers" / folder / "chat_cases.json"));
}

TEST(ChatTemplateReference, MatchesEveryCaseOfEveryFolder) {
    WP_REQUIRE_SHARED();
    int checked = 0;
    for (const std::string folder : {"gemma", "gemma2", "qwen2", "qwen2_5", "qwen3"}) {
        const fs::path dir = shared_dir() / "tokenizers" / folder;
        const std::optional<ChatTemplate> tmpl = ChatTemplate::from_folder(dir);
        ASSERT_TRUE(tmpl.has_value()) << folder;
        const ordered_json cases = chat_cases(folder);
        EXPECT_GE(cases.size(), 15u) << folder;
        for (const auto& c : cases) {
            SCOPED_TRACE(folder + "/" + c.at("id").get<std::string>());
            const ordered_json ctx = case_context(dir, c);
            if (c.contains("rendered")) {
                EXPECT_EQ(tmpl->render(ctx), c["rendered"].get<std::string>());
            } else {
                // raise_exception's message, exactly.
                try {
                    tmpl->render(ctx);
                    ADD_FAILURE() << "expected the template to raise";
                } catch (const TemplateError& e) {
                    EXPECT_EQ(std::string(e.what()), c.at("error").get<std::string>());
                }
            }
            ++checked;
        }
    }
    EXPECT_EQ(checked, 75);
}

TEST(ChatTemplateReference, BuiltinsAreTheReferenceTemplates) {
    WP_REQUIRE_SHARED();
    const fs::path tokenizers = shared_dir() / "tokenizers";
    EXPECT_EQ(ChatTemplate::builtin(Family::Gemma).source(), read_text(tokenizers / "gemma2" / "chat_template.jinja"));
    const auto qwen2_config = ordered_json::parse(read_text(tokenizers / "qwen2" / "tokenizer_config.json"));
    EXPECT_EQ(ChatTemplate::builtin(Family::Qwen2).source(), qwen2_config.at("chat_template").get<std::string>());

    for (const auto& [family, folder] : {std::pair{Family::Gemma, "gemma2"}, std::pair{Family::Qwen2, "qwen2"}}) {
        const ordered_json cases = chat_cases(folder);
        for (const std::string id : {"multi-turn-gen", "system-multi-nogen", "unicode"}) {
            SCOPED_TRACE(std::string(family_name(family)) + " " + id);
            const ordered_json& c = find_case(cases, id);
            const ordered_json ctx = case_context(tokenizers / folder, c);
            if (c.contains("rendered")) {
                EXPECT_EQ(ChatTemplate::builtin(family).render(ctx), c["rendered"].get<std::string>());
            } else {
                EXPECT_EQ(error_of(ChatTemplate::builtin(family).source(), ctx), c.at("error").get<std::string>());
            }
        }
    }
}

TEST(ChatTemplateReference, EachFamilyHasItsBuiltin) {
    // Gemma2's instruct checkpoints ship Gemma's template.
    EXPECT_EQ(ChatTemplate::builtin(Family::Gemma2).source(), ChatTemplate::builtin(Family::Gemma).source());
    EXPECT_NE(ChatTemplate::builtin(Family::Qwen2).source(), ChatTemplate::builtin(Family::Gemma).source());
}

// ---- Folders ----

TEST(ChatTemplateFolder, SharedTokenizersFollowTransformersPrecedence) {
    WP_REQUIRE_SHARED();
    const fs::path tokenizers = shared_dir() / "tokenizers";
    const auto gemma2 = ChatTemplate::from_folder(tokenizers / "gemma2");  // chat_template.jinja
    ASSERT_TRUE(gemma2.has_value());
    EXPECT_EQ(gemma2->source(), read_text(tokenizers / "gemma2" / "chat_template.jinja"));
    const auto qwen2 = ChatTemplate::from_folder(tokenizers / "qwen2");  // tokenizer_config.json
    ASSERT_TRUE(qwen2.has_value());
    EXPECT_THAT(qwen2->source(), HasSubstr("You are a helpful assistant."));
    EXPECT_FALSE(ChatTemplate::from_folder(tokenizers / "llama2-sentencepiece").has_value());
}

TEST(ChatTemplateFolder, TinyFixturesRenderTheirReferencePrompts) {
    WP_REQUIRE_SHARED();
    const fs::path fixtures = shared_dir() / "fixtures";
    for (const auto& [model, ref, question] : {std::tuple{"tiny-gemma2", "chat19", "Who made the light?"},
                                               std::tuple{"tiny-qwen2", "chat69", "Who wrote Psalm 23?"}}) {
        SCOPED_TRACE(model);
        const fs::path dir = fixtures / model;
        const auto tmpl = ChatTemplate::from_folder(dir);  // from tokenizer_config.json
        ASSERT_TRUE(tmpl.has_value());
        ordered_json ctx = ChatTemplate::special_tokens_context(dir);
        ctx["messages"] = ordered_json::array({{{"role", "user"}, {"content", question}}});
        ctx["add_generation_prompt"] = true;
        ctx["tools"] = nullptr;
        const auto meta = ordered_json::parse(read_text(dir / "reference" / (std::string(ref) + ".json")));
        EXPECT_EQ(tmpl->render(ctx), meta.at("text").get<std::string>());
    }
}

TEST(ChatTemplateFolder, TemplateSourcesAndTheirProblems) {
    TempDir dir;
    EXPECT_FALSE(ChatTemplate::from_folder(dir.path()).has_value());  // no files
    write_text(dir.path() / "tokenizer_config.json", R"({"eos_token": "</s>"})");
    EXPECT_FALSE(ChatTemplate::from_folder(dir.path()).has_value());  // no chat_template
    write_text(dir.path() / "tokenizer_config.json", R"({"chat_template": null})");
    EXPECT_FALSE(ChatTemplate::from_folder(dir.path()).has_value());

    // Named templates: the one called "default".
    write_text(dir.path() / "tokenizer_config.json",
               R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})");
    EXPECT_EQ(ChatTemplate::from_folder(dir.path())->source(), "D");
    write_text(dir.path() / "tokenizer_config.json", R"({"chat_template": [{"name": "tool_use", "template": "T"}]})");
    EXPECT_THROW(ChatTemplate::from_folder(dir.path()), Error);
    write_text(dir.path() / "tokenizer_config.json", R"({"chat_template": 5})");
    EXPECT_THROW(ChatTemplate::from_folder(dir.path()), Error);
    write_text(dir.path() / "tokenizer_config.json", R"({"chat_template": )");
    EXPECT_THROW(ChatTemplate::from_folder(dir.path()), Error);

    // chat_template.jinja wins over the config; a syntax error names the file and the line.
    write_text(dir.path() / "tokenizer_config.json", R"({"chat_template": "config"})");
    write_text(dir.path() / "chat_template.jinja", "file");
    EXPECT_EQ(ChatTemplate::from_folder(dir.path())->source(), "file");
    write_text(dir.path() / "chat_template.jinja", "ok\n{% if %}");
    try {
        ChatTemplate::from_folder(dir.path());
        ADD_FAILURE() << "expected a syntax error";
    } catch (const TemplateError& e) {
        EXPECT_THAT(e.what(), HasSubstr("chat_template.jinja"));
        EXPECT_THAT(e.what(), HasSubstr("line 2"));
    }
}

TEST(ChatTemplateFolder, SpecialTokensContext) {
    WP_REQUIRE_SHARED();
    const ordered_json gemma = ChatTemplate::special_tokens_context(shared_dir() / "tokenizers" / "gemma2");
    EXPECT_EQ(gemma,
              ordered_json::parse(
                  R"({"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>"})"));
    const ordered_json qwen = ChatTemplate::special_tokens_context(shared_dir() / "tokenizers" / "qwen2");
    EXPECT_EQ(qwen, ordered_json::parse(R"({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                                            "additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})"));
    EXPECT_EQ(render("[{{ bos_token }}]{{ bos_token is defined }}", qwen), "[]False");
}

TEST(ChatTemplateFolder, SpecialTokensFromAddedTokenObjectsAndLegacyMap) {
    TempDir dir;
    EXPECT_EQ(ChatTemplate::special_tokens_context(dir.path()), ordered_json::object());
    write_text(dir.path() / "tokenizer_config.json",
               R"({"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>", "unk_token": null,
                   "pad_token": "", "additional_special_tokens": ["<a>"]})");
    // Without added_tokens_decoder (an older save) special_tokens_map.json overrides the config.
    write_text(dir.path() / "special_tokens_map.json",
               R"({"eos_token": {"content": "<end>"}, "additional_special_tokens": [{"content": "<b>"}, "<a>"]})");
    EXPECT_EQ(ChatTemplate::special_tokens_context(dir.path()),
              ordered_json::parse(
                  R"({"bos_token": "<s>", "eos_token": "<end>", "additional_special_tokens": ["<a>", "<b>"]})"));
    // A current save (with added_tokens_decoder): transformers ignores special_tokens_map.json.
    write_text(dir.path() / "tokenizer_config.json", R"({"eos_token": "</s>", "added_tokens_decoder": {}})");
    EXPECT_EQ(ChatTemplate::special_tokens_context(dir.path()), ordered_json::parse(R"({"eos_token": "</s>"})"));
    write_text(dir.path() / "tokenizer_config.json", R"({"eos_token": 3})");
    EXPECT_THROW(ChatTemplate::special_tokens_context(dir.path()), Error);
}

// ---- Language: expected values produced by Python jinja2 3.1 configured as transformers does ----

struct Case {
    const char* tmpl;
    const char* context;  // JSON
    const char* expected;
};

constexpr const char* kConversation =
    R"j({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"},
                      {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"}]})j";

const Case kLoopsCases[] = {
    {R"j({% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.length }}{{ loop.first }}{{ loop.last }} {% endfor %})j",
     kConversation,
     "10434TrueFalse 21324FalseFalse 32214FalseFalse 43104FalseTrue "},
    {R"j({% for m in messages %}[{{ loop.previtem.role if loop.previtem is defined else '-' }}|{{ loop.nextitem.role if loop.nextitem is defined else '-' }}]{% endfor %})j",
     kConversation,
     "[-|user][system|assistant][user|user][assistant|-]"},
    {R"j({% for m in messages if m.role != 'system' %}{{ loop.index }}:{{ m.content }}{{ ',' if not loop.last }}{% endfor %})j",
     kConversation,
     "1:U1,2:A1,3:U2"},
    {R"j({% for x in [] %}never{% else %}empty{% endfor %}{% for x in nothing %}never{% else %}undefined is empty{% endfor %})j",
     R"j({})j", "emptyundefined is empty"},
    {R"j({% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in d %}{{ k }}{% endfor %}|{% for (a, b) in [(1, 2)] %}{{ a + b }}{% endfor %})j",
     R"j({"d": {"zeta": 1, "alpha": 2}})j", "zeta=1;alpha=2;|zetaalpha|3"},
    {R"j({% for i in range(3) %}{% for j in range(2) %}{{ loop.index }}{% endfor %}/{{ loop.index }} {% endfor %})j",
     R"j({})j", "12/1 12/2 12/3 "},
    {R"j({% for i in range(10) %}{% if i is even %}{% continue %}{% endif %}{% if i > 6 %}{% break %}{% endif %}{{ i }}{% endfor %})j",
     R"j({})j", "135"},
    {R"j({% for c in 'añb' %}{{ c }}.{% endfor %}{% for i in range(3) %}{{ loop.cycle('x', 'y') }}{% endfor %})j",
     R"j({})j", "a.ñ.b.xyx"},
    {R"j({% set x = 'outer' %}{% for i in [1, 2] %}{{ x }}{% set x = 'inner' %}{{ x }} {% endfor %}{{ x }})j",
     R"j({})j", "outerinner outerinner outer"},
    {R"j({% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }})j", R"j({})j", "2"},
};

const Case kAssignmentsCases[] = {
    {R"j({% set ns = namespace(count=0, names=[]) %}{% for m in messages %}{% set ns.count = ns.count + 1 %}{% set ns.names = ns.names + [m.role] %}{% endfor %}{{ ns.count }} {{ ns.names|join(',') }})j",
     kConversation,
     "4 system,user,assistant,user"},
    {R"j({% set ns = namespace(found=false) %}{% for m in messages[::-1] %}{% if not ns.found and m.role == 'user' %}{% set ns.found = true %}{{ m.content }}{% endif %}{% endfor %})j",
     kConversation,
     "U2"},
    {R"j({% set a, b = 1, 'two' %}{{ a }}{{ b }}{% set t = (1, 2) %}{{ t }}{% set x %}captured {{ a }}{% endset %}[{{ x }}]{% set y | upper %}shout{% endset %}{{ y }})j",
     R"j({})j", "1two(1, 2)[captured 1]SHOUT"},
    {R"j({% filter upper %}up {{ 'here' }}{% endfilter %})j", R"j({})j", "UP HERE"},
};

const Case kMacrosCases[] = {
    {R"j({% macro tag(name, body='', close=true) %}<{{ name }}>{{ body }}{% if close %}</{{ name }}>{% endif %}{% endmacro %}{{ tag('a') }}{{ tag('b', 'x') }}{{ tag('c', close=false) }}{{ tag(name='d', body=1) }})j",
     R"j({})j", "<a></a><b>x</b><c><d>1</d>"},
    {R"j({% macro render(v) %}{% if v is mapping %}{{ '{' }}{% for k, x in v.items() %}{{ k }}:{{ render(x) }}{{ ',' if not loop.last }}{% endfor %}{{ '}' }}{% elif v is sequence and v is not string %}[{% for x in v %}{{ render(x) }}{% endfor %}]{% else %}{{ v }}{% endif %}{% endmacro %}{{ render(d) }})j",
     R"j({"d": {"a": [1, {"b": null}], "c": "s"}})j", "{a:[1{b:None}],c:s}"},
    {R"j({% macro box() %}[{{ caller() }}]{% endmacro %}{% call box() %}inside {{ 1 + 1 }}{% endcall %}{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(x) each([1, 2]) %}<{{ x }}>{% endcall %})j",
     R"j({})j", "[inside 2]<1><2>"},
    {R"j({% set greeting = 'hi' %}{% macro greet(who) %}{{ greeting }} {{ who }}{% endmacro %}{{ greet('you') }}{{ greet }})j",
     R"j({})j", "hi you<Macro 'greet'>"},
};

const Case kFiltersCases[] = {
    {R"j({{ '  pad  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ 'héllo'|length }}|{{ [1, 2]|count }}|{{ 'MiXed'|upper }}{{ 'MiXed'|lower }}|{{ 'hello big-world'|title }}|{{ 'hELLO'|capitalize }})j",
     R"j({})j", "pad|hi|5|2|MIXEDmixed|Hello Big-World|Hello"},
    {R"j({{ 'a-b-c'|replace('-', '+') }}|{{ 'a-b-c'|replace('-', '', 1) }}|{{ missing|default('dflt') }}|{{ ''|default('empty', true) }}|{{ none|d('kept none') }}|{{ [1, 2, 3]|join(', ') }}|{{ users|join('/', attribute='name') }})j",
     R"j({"users": [{"name": "ann"}, {"name": "bob"}]})j", "a+b+c|ab-c|dflt|empty|None|1, 2, 3|ann/bob"},
    {R"j({{ [3, 1, 2]|first }}{{ [3, 1, 2]|last }}{{ 'abc'|first }}{{ 'abc'|list }}{{ {'k': 1}|list }}|{{ 42|string ~ 'x' }}|{{ '12'|int + 1 }}{{ '3.9'|int }}{{ 'junk'|int }}{{ 'junk'|int(7) }}|{{ '2.5'|float * 2 }}|{{ -4|abs }}{{ -2.5|abs }})j",
     R"j({})j", "32a['a', 'b', 'c']['k']|42x|13307|5.0|42.5"},
    {R"j({{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 1.2345|round(2, 'floor') }} {{ 1.2345|round(1, 'ceil') }} {{ 7|round }})j",
     R"j({})j", "2.0 4.0 2.67 1.23 1.3 7"},
    {R"j({{ d|items|list }}|{{ d|dictsort }}|{{ d|dictsort(by='value', reverse=true) }})j",
     R"j({"d": {"b": 2, "A": 3, "c": 1}})j",
     "[('b', 2), ('A', 3), ('c', 1)]|[('A', 3), ('b', 2), ('c', 1)]|[('A', 3), ('b', 2), ('c', 1)]"},
    {R"j({{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(',') }}|{{ msgs|rejectattr('role', 'in', ['user', 'system'])|list|length }}|{{ [1, 2, 3, 4]|select('odd')|list }}{{ [1, 2, 3, 4]|reject('divisibleby', 2)|list }}|{{ ['a', 'b']|map('upper')|join }}|{{ msgs|map(attribute='name', default='?')|join }})j",
     R"j({"msgs": [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"}]})j",
     "U1,U2|1|[1, 3][1, 3]|AB|????"},
    {R"j({{ '<a href="x">&amp;</a>'|escape }}|{{ '<b>'|e }}|{{ '<b>'|safe }}|{{ 'line1\nline2\n\nline4'|indent(2) }}|{{ 'a\nb'|indent('> ', first=true) }})j",
     R"j({})j", "&lt;a href=&#34;x&#34;&gt;&amp;amp;&lt;/a&gt;|&lt;b&gt;|<b>|line1\n  line2\n\n  line4|> a\n> b"},
    {R"j({{ ['b', 'A', 'a', 'B']|unique|list }}|{{ [3, 1, 2]|sort }}{{ ['b', 'A', 'c']|sort }}{{ [3, 1, 2]|sort(reverse=true) }}|{{ users|sort(attribute='age')|map(attribute='name')|join }}|{{ [1, 2]|reverse|list }}{{ 'abc'|reverse }}|{{ [1, 2.5]|sum }}{{ users|sum(attribute='age') }}|{{ [4, 2, 8]|min }}{{ [4, 2, 8]|max }}{{ ['b', 'A']|min }}|{{ [1, 2, 3, 4, 5]|batch(2, 0)|list }})j",
     R"j({"users": [{"name": "x", "age": 30}, {"name": "y", "age": 20}]})j",
     "['b', 'A']|[1, 2, 3]['A', 'b', 'c'][3, 2, 1]|yx|[2, 1]cba|3.550|28A|[[1, 2], [3, 4], [5, 0]]"},
};

const Case kTestsCases[] = {
    {R"j({{ x is defined }}{{ missing is undefined }}{{ none is none }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 'a' is sequence }}{{ 1.5 is number }}{{ true is number }}{{ 1 is integer }}{{ true is integer }}{{ 1.0 is float }}{{ false is boolean }}{{ true is true }}{{ 0 is false }})j",
     R"j({"x": null})j", "TrueTrueTrueTrueTrueTrueTrueTrueTrueTrueFalseTrueTrueTrueFalse"},
    {R"j({{ 3 is odd }}{{ 3 is even }}{{ 12 is divisibleby 4 }}{{ 12 is divisibleby(5) }}{{ 1 is eq 1 }}{{ 1 is equalto 2 }}{{ 1 is ne 2 }}{{ 2 is in [1, 2] }}{{ 'b' is in 'abc' }}{{ x is not none }}{{ x is mapping and x.k is defined }})j",
     R"j({"x": {"k": 0}})j", "TrueFalseTrueFalseTrueFalseTrueTrueTrueTrueTrue"},
};

const Case kOperatorsCases[] = {
    {R"j({{ 7 + 2 }} {{ 7 - 2.5 }} {{ 7 * 3 }} {{ 7 / 2 }} {{ 8 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 2 ** -1 }})j",
     R"j({})j", "9 4.5 21 3.5 4.0 3 -4 1 2 1024 64 4 0.5"},
    {R"j({{ 'a' ~ 1 ~ none ~ true ~ missing }}|{{ 'ab' + 'cd' }}|{{ 'ab' * 3 }}|{{ [1] + [2] }}|{{ [0] * 3 }}|{{ 1 == 1.0 }}{{ 'a' != 'b' }}{{ 1 < 2 <= 2 }}{{ 3 > 2 > 2 }}{{ 'abc' < 'abd' }}{{ [1, 2] < [1, 3] }})j",
     R"j({})j", "a1NoneTrue|abcd|ababab|[1, 2]|[0, 0, 0]|TrueTrueTrueFalseTrueTrue"},
    {R"j({{ true and 'x' }}|{{ 0 and 'x' }}|{{ '' or 'fallback' }}|{{ not [] }}|{{ 'b' in 'abc' }}{{ 'z' not in 'abc' }}{{ 2 in [1, 2] }}{{ 'k' in {'k': 1} }}{{ missing in [1] }}|{{ 'yes' if 1 else 'no' }}{{ 'yes' if 0 else 'no' }}[{{ 'only' if false }}])j",
     R"j({})j", "x|0|fallback|True|TrueTrueTrueTrueFalse|yesno[]"},
    {R"j({{ 'it\'s' }}|{{ "say \"hi\"" }}|{{ 'tab\there' }}|{{ 'a' 'b' }}|{{ '\u00e9\x41\101' }}|{{ 1_000 }} {{ 1.5e3 }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e-5 }} {{ -0.0 }} {{ 3.0 }})j",
     R"j({})j", "it's|say \"hi\"|tab\there|ab|éAA|1000 1500.0 0.30000000000000004 1e+16 1e-05 -0.0 3.0"},
    {R"j({{ [1, 'two', none, true, 2.5] }}|{{ {'a': 1, 'b': [false]} }}|{{ (1,) }}{{ (1, 'x') }}|{{ True }}{{ False }}{{ None }}|{{ ["it's", 'a\nb', 'é'] }})j",
     R"j({})j",
     "[1, 'two', None, True, 2.5]|{'a': 1, 'b': [False]}|(1,)(1, 'x')|TrueFalseNone|[\"it's\", 'a\\nb', 'é']"},
};

const Case kSubscriptsCases[] = {
    {R"j({{ s[0] }}{{ s[-1] }}{{ s[1:3] }}{{ s[::-1] }}{{ s[::2] }}{{ s[-2:] }}{{ s[:-2] }}|{{ xs[1] }}{{ xs[-1] }}{{ xs[1:] }}{{ xs[::-1] }}{{ xs[5] }}{{ xs[-9:9] }}|{{ xs.0 }}{{ d['k'] }}{{ d.k }}{{ d['missing'] }})j",
     R"j({"s": "héllo", "xs": [1, 2, 3], "d": {"k": "v"}})j", "hoélolléhhlolohél|23[2, 3][3, 2, 1][1, 2, 3]|1vv"},
    {R"j({{ d.items is callable }}{{ d['items'] }}|{{ d.get('k') }}{{ d.get('nope') }}{{ d.get('nope', 0) }}|{{ d.keys()|list }}{{ d.values()|list }})j",
     R"j({"d": {"items": "key wins with []", "k": "v"}})j",
     "Truekey wins with []|vNone0|['items', 'k']['key wins with []', 'v']"},
};

const Case kMethodsCases[] = {
    {R"j({{ '  a b  '.strip() }}|{{ '--x--'.strip('-') }}|{{ '\n\nx'.lstrip('\n') }}|{{ 'x  '.rstrip() }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}|{{ 'x\ny\r\nz'.splitlines() }})j",
     R"j({})j", "a b|x|x|x|['a', 'b', '', 'c']|['a', 'b']|['a', 'b c']|['a b', 'c']|['x', 'y', 'z']"},
    {R"j({{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}|{{ 'hello'.upper() }}{{ 'HeLLo'.lower() }}{{ 'hello world'.title() }}{{ 'hELLO'.capitalize() }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'héllo'.find('l') }}{{ 'abc'.find('z') }}{{ 'abab'.count('ab') }}|{{ ', '.join(['x', 'y']) }})j",
     R"j({})j", "TrueTrue|HELLOhelloHello WorldHello|bba|2-12|x, y"},
    {R"j({% set content = '<think>\nplan\n</think>\n\nanswer' %}{{ content.split('</think>')[-1].lstrip('\n') }}|{{ content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') }})j",
     R"j({})j", "answer|plan"},
};

const Case kUndefinedCases[] = {
    {R"j([{{ missing }}][{{ missing|length }}][{{ missing|trim }}][{{ missing|join }}][{{ missing|list }}]{{ missing is defined }}{{ d.nope is defined }}{{ d.k is defined }}{{ d.k is none }})j",
     R"j({"d": {"k": null}})j", "[][0][][][[]]FalseFalseTrueTrue"},
    {R"j({% if missing %}x{% elif missing == missing %}undefined equals undefined{% endif %}|{{ missing or 'or' }}|{{ none }}|{{ d.k }})j",
     R"j({"d": {"k": null}})j", "undefined equals undefined|or|None|None"},
};

const Case kJsonCases[] = {
    {R"j({{ tools|tojson }})j",
     R"j({"tools": [{"type": "function", "function": {"name": "get_weather", "description": "°C or °F — 東京", "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}}]})j",
     "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"°C or °F — 東京\", "
     "\"parameters\": {\"type\": \"object\", \"required\": [\"city\"], \"properties\": {\"city\": {\"type\": "
     "\"string\"}}}}}]"},
    {R"j({{ v|tojson }}|{{ v|tojson(indent=2) }}|{{ v|tojson(sort_keys=true) }}|{{ v|tojson(ensure_ascii=true) }}|{{ v|tojson(separators=(',', ':')) }})j",
     R"j({"v": {"z": [1, 2.5, true, null, "q\"\\\n\t\u0001"], "a": {}, "é": []}})j",
     "{\"z\": [1, 2.5, true, null, \"q\\\"\\\\\\n\\t\\u0001\"], \"a\": {}, \"é\": []}|{\n  \"z\": [\n    1,\n    "
     "2.5,\n    true,\n    null,\n    \"q\\\"\\\\\\n\\t\\u0001\"\n  ],\n  \"a\": {},\n  \"é\": []\n}|{\"a\": {}, "
     "\"z\": [1, 2.5, true, null, \"q\\\"\\\\\\n\\t\\u0001\"], \"é\": []}|{\"z\": [1, 2.5, true, null, "
     "\"q\\\"\\\\\\n\\t\\u0001\"], \"a\": {}, \"\\u00e9\": "
     "[]}|{\"z\":[1,2.5,true,null,\"q\\\"\\\\\\n\\t\\u0001\"],\"a\":{},\"é\":[]}"},
    {R"j({{ 'text'|tojson }}{{ 3|tojson }}{{ none|tojson }}{{ (1, 2)|tojson }}{{ 1.0|tojson }})j", R"j({})j",
     "\"text\"3null[1, 2]1.0"},
};

const Case kWhitespaceCases[] = {
    {"<ul>\n  {% for x in [1, 2] %}\n  <li>{{ x }}</li>\n  {% endfor %}\n</ul>\n", R"j({})j",
     "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>"},
    {"a  {%- if true -%}  b  {%- endif -%}  c\n{{- ' d ' -}}\n e {{ 'f' }}\n g", R"j({})j", "abc d e f\n g"},
    {"x\n    {%+ if true %}kept indent{% endif +%}\ny\n  {{ 'var lines keep their indent' }}\n", R"j({})j",
     "x\n    kept indent\ny\n  var lines keep their indent"},
    {"one {# a comment #}\n  {# own line #}\ntwo{#- trims -#}   three\n{% raw %}{{ not a tag }}{% endraw %}\n",
     R"j({})j", "one twothree\n{{ not a tag }}"},
    {"{% generation %}{% set hidden = 1 %}in generation{% endgeneration %}[{{ hidden }}]\n{% if true %}\n\tTabbed\n{% "
     "endif %}\r\nwindows\r\n",
     R"j({})j", "in generation[]\n\tTabbed\nwindows"},
};

template <std::size_t N>
void check(const Case (&cases)[N]) {
    for (const Case& c : cases) {
        SCOPED_TRACE(c.tmpl);
        EXPECT_EQ(render(c.tmpl, ordered_json::parse(c.context)), c.expected);
    }
}

TEST(ChatTemplateLanguage, Loops) { check(kLoopsCases); }
TEST(ChatTemplateLanguage, AssignmentsAndNamespaces) { check(kAssignmentsCases); }
TEST(ChatTemplateLanguage, Macros) { check(kMacrosCases); }
TEST(ChatTemplateLanguage, Filters) { check(kFiltersCases); }
TEST(ChatTemplateLanguage, Tests) { check(kTestsCases); }
TEST(ChatTemplateLanguage, OperatorsLiteralsAndPythonStr) { check(kOperatorsCases); }
TEST(ChatTemplateLanguage, SubscriptsAndSlices) { check(kSubscriptsCases); }
TEST(ChatTemplateLanguage, StringMethods) { check(kMethodsCases); }
TEST(ChatTemplateLanguage, Undefined) { check(kUndefinedCases); }
TEST(ChatTemplateLanguage, TojsonKeepsKeyOrderAndNonAscii) { check(kJsonCases); }
TEST(ChatTemplateLanguage, WhitespaceControl) { check(kWhitespaceCases); }

TEST(ChatTemplateLanguage, UndefinedRaisesWhenLookedInto) {
    // As jinja2's default Undefined in transformers: printing or testing one is fine, looking into it
    // (attribute or item) raises UndefinedError.
    EXPECT_EQ(render("[{{ missing }}]{{ missing is defined }}{{ missing|default('d') }}{{ {}.nope is defined }}"),
              "[]FalsedFalse");
    EXPECT_THAT(error_of("{{ missing.attr }}"), HasSubstr("'missing' is undefined"));
    EXPECT_THAT(error_of("{{ missing['k'] }}"), HasSubstr("'missing' is undefined"));
    EXPECT_THAT(error_of("{{ missing.attr is defined }}"), HasSubstr("'missing' is undefined"));
    EXPECT_THAT(error_of("{% for m in messages %}{{ m.tool_calls.first.name }}{% endfor %}",
                         ordered_json::parse(R"({"messages": [{"role": "user"}]})")),
                HasSubstr("'dict object' has no attribute 'tool_calls'"));
    // Using an undefined value as a real one is still an error, with its name.
    EXPECT_THAT(error_of("{{ missing + 1 }}"), HasSubstr("'missing' is undefined"));
    EXPECT_THAT(error_of("{{ missing() }}"), HasSubstr("'missing' is undefined"));
    EXPECT_THAT(error_of("{{ d.nope < 1 }}", ordered_json::parse(R"({"d": {}})")),
                HasSubstr("'dict object' has no attribute 'nope'"));
}

TEST(ChatTemplateLanguage, ListMethodsAndJinjaQuirks) {
    // Python's list.count/index; jinja2's Undefined counts as callable and a failed slice is undefined.
    EXPECT_EQ(render("{{ [1, 2, 1].count(1) }}{{ ['a', 'b'].index('b') }}|{{ missing is callable }}{{ (1)[1:] is defined }}"),
              "21|TrueFalse");
    EXPECT_THAT(error_of("{{ [1].index(5) }}"), HasSubstr("5 is not in list"));
}

TEST(ChatTemplateLanguage, ContextKeyOrderIsKept) {
    // nlohmann::ordered_json keeps the caller's key order; tojson must print it unchanged.
    const auto ctx = ordered_json::parse(R"({"x": {"zebra": 1, "apple": {"b": 2, "a": 3}}})");
    EXPECT_EQ(render("{{ x|tojson }} {{ x }} {{ x|list }}", ctx),
              R"({"zebra": 1, "apple": {"b": 2, "a": 3}} {'zebra': 1, 'apple': {'b': 2, 'a': 3}} ['zebra', 'apple'])");
}

TEST(ChatTemplateLanguage, StrftimeNowUsesTheClock) {
    char year[8];
    const std::time_t now = std::time(nullptr);
    std::strftime(year, sizeof year, "%Y", std::localtime(&now));
    const std::string out =
        render("{{ strftime_now('%Y') }}|{{ strftime_now('%d %b %Y')|length }}|{{ strftime_now('100%%') }}");
    EXPECT_THAT(out, testing::AnyOf(testing::StartsWith(std::string(year) + "|11|100%"),
                                    testing::StartsWith(std::to_string(std::atoi(year) + 1) + "|11|100%")));
}

// ---- Sandbox ----

TEST(ChatTemplateSandbox, LoopIterationsAreBounded) {
    EXPECT_THAT(error_of("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
                HasSubstr("more than 100000 loop iterations"));
    TemplateLimits small;
    small.max_loop_iterations = 10;
    EXPECT_EQ(render("{% for i in range(10) %}.{% endfor %}", {}, small), "..........");
    EXPECT_THAT(error_of("{% for i in range(11) %}.{% endfor %}", {}, small), HasSubstr("loop iterations"));
    // Filtered-out items count too, as do macro calls.
    EXPECT_THAT(error_of("{% for i in range(11) if false %}{% endfor %}", {}, small), HasSubstr("loop iterations"));
    EXPECT_THAT(
        error_of("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(30) }}"),
        HasSubstr("loop iterations"));
    EXPECT_THAT(error_of("{{ range(1000000)|length }}"), HasSubstr("range too big"));
}

TEST(ChatTemplateSandbox, OutputAndValuesAreBounded) {
    EXPECT_THAT(error_of("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}"),
                HasSubstr("template output exceeds the limit of 4194304 bytes"));
    TemplateLimits small;
    small.max_output_bytes = 100;
    EXPECT_EQ(render("{{ 'x' * 100 }}", {}, small).size(), 100u);
    EXPECT_THAT(error_of("{{ 'x' * 60 }}{{ 'y' * 41 }}", {}, small), HasSubstr("template output exceeds"));
    // A string too large to ever print is refused before it is built, wherever it is made.
    EXPECT_THAT(error_of("{% set s = 'x' * 1000000000000 %}"), HasSubstr("exceed the output limit"));
    EXPECT_THAT(
        error_of("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"),
        HasSubstr("exceed the output limit"));
    EXPECT_THAT(error_of("{% set l = [0] * 1000000000000 %}"), HasSubstr("evaluation steps"));
    // Quadratic work inside the iteration bound still ends, through the step budget.
    TemplateLimits quick;
    quick.max_steps = 1'000'000;
    const std::string quadratic =
        "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [i] %}{% endfor %}";
    EXPECT_THAT(error_of(quadratic, {}, quick), HasSubstr("more than 1000000 evaluation steps"));
    EXPECT_THAT(error_of("{{ ('a' * 100000 ~ 'b') in ('a' * 4000000) }}"), HasSubstr("evaluation steps"));
    EXPECT_THAT(error_of("{% for i in range(100000) %}{{ s|length }}{{ s[-1] }}{% endfor %}",
                         ordered_json{{"s", std::string(1 << 20, 'x')}}, quick),
                HasSubstr("evaluation steps"));
}

TEST(ChatTemplateSandbox, RecursionAndNestingAreBounded) {
    EXPECT_THAT(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
                HasSubstr("macro calls nested more than 40"));
    const std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
    EXPECT_THAT(error_of(deep), HasSubstr("nested more than 100 levels"));
    std::string blocks;
    for (int i = 0; i < 500; ++i) blocks += "{% if true %}";
    EXPECT_THAT(error_of(blocks), HasSubstr("nested more than 100 levels"));
    EXPECT_THAT(error_of("{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}"),
                HasSubstr("nested more than 200 levels"));
    // A namespace cannot hold a namespace, so values can form no reference cycles.
    EXPECT_THAT(error_of("{% set a = namespace() %}{% set b = namespace(x=[a]) %}"),
                HasSubstr("cannot hold a namespace"));
    EXPECT_THAT(error_of("{% set a = namespace() %}{% set a.self = a %}"), HasSubstr("cannot hold a namespace"));
}

TEST(ChatTemplateSandbox, NoWayOut) {
    EXPECT_THAT(error_of("{% include 'secrets.txt' %}"), HasSubstr("'include' is not supported"));
    EXPECT_THAT(error_of("{% import 'os' as os %}"), HasSubstr("'import' is not supported"));
    EXPECT_THAT(error_of("{% extends 'base' %}"), HasSubstr("'extends' is not supported"));
    // Python internals are simply not there.
    EXPECT_EQ(render("[{{ ''.__class__ }}{{ range.__globals__ }}{{ cycler }}{{ self }}{{ config }}{{ os }}]"), "[]");
    EXPECT_THAT(error_of("{{ lipsum() }}"), HasSubstr("'lipsum' is undefined"));
}

TEST(ChatTemplateSandbox, MalformedTemplatesNeverCrash) {
    WP_REQUIRE_SHARED();
    // Every prefix of a real template either works or fails with a TemplateError.
    const std::string full =
        ordered_json::parse(read_text(shared_dir() / "tokenizers" / "qwen3" / "tokenizer_config.json"))
            .at("chat_template")
            .get<std::string>();
    const ordered_json ctx =
        case_context(shared_dir() / "tokenizers" / "qwen3", find_case(chat_cases("qwen3"), "tools-weather"));
    int rendered = 0, rejected = 0;
    for (std::size_t n = 0; n <= full.size(); n += 3) {
        try {
            ChatTemplate(full.substr(0, n)).render(ctx);
            ++rendered;
        } catch (const TemplateError&) {
            ++rejected;
        }
    }
    EXPECT_GT(rendered, 0);
    EXPECT_GT(rejected, 0);
}

// ---- Errors ----

TEST(ChatTemplateErrors, SyntaxErrorsNameLineAndColumn) {
    EXPECT_THAT(error_of("line one\n{% if x %}\n  {{ 1 + }}\n{% endif %}"),
                HasSubstr("syntax error at line 3, column 10"));
    EXPECT_THAT(error_of("{% for x in y %}\n{% endif %}"),
                HasSubstr("unknown tag 'endif'; the 'for' at line 1 expects 'endfor' or 'else'"));
    EXPECT_THAT(error_of("a\n{% for x in y %}..."),
                HasSubstr("unexpected end of template; the 'for' at line 2 expects 'endfor' or 'else'"));
    EXPECT_THAT(error_of("\n\n{{ x "), HasSubstr("line 3, column 1: unclosed '{{'"));
    EXPECT_THAT(error_of("{% if x %}"), HasSubstr("expects 'elif', 'else' or 'endif'"));
    EXPECT_THAT(error_of("{# never closed"), HasSubstr("missing end of comment tag"));
    EXPECT_THAT(error_of("{{ 'open }}"), HasSubstr("unterminated string literal"));
    EXPECT_THAT(error_of("{{ (1 }}"), HasSubstr("unexpected '}', expected ')'"));
    EXPECT_THAT(error_of("{{ 1 ! 2 }}"), HasSubstr("unexpected character '!'"));
    EXPECT_THAT(error_of("{% frobnicate %}"), HasSubstr("unknown tag 'frobnicate'"));
    EXPECT_THAT(error_of("{% break %}"), HasSubstr("'break' outside of a loop"));
    EXPECT_THAT(error_of("{% macro m(a=1, b) %}{% endmacro %}"),
                HasSubstr("non-default argument follows default argument"));
    EXPECT_THAT(error_of("{% set true = 1 %}"), HasSubstr("cannot assign to 'true'"));
    EXPECT_THAT(error_of("{{ x is defined is defined }}"), HasSubstr("cannot chain multiple tests"));
    EXPECT_THAT(error_of("{{ '\\x4' }}"), HasSubstr("truncated \\x escape"));
    EXPECT_THAT(error_of("{% raw %}never closed"), HasSubstr("missing end of raw block"));
    EXPECT_THAT(error_of("{{ }}"), HasSubstr("expected an expression"));
}

TEST(ChatTemplateErrors, RuntimeErrorsNameTheLine) {
    // Unknown filters and tests fail when used, naming them, as jinja2 does for untaken branches.
    EXPECT_THAT(error_of("ok\n{{ 'x' | frobnicate }}"), HasSubstr("error at line 2: unknown filter 'frobnicate'"));
    EXPECT_EQ(render("{% if false %}{{ 'x' | frobnicate }}{% endif %}fine"), "fine");
    EXPECT_THAT(error_of("{{ 1 is frobnicated }}"), HasSubstr("unknown test 'frobnicated'"));
    EXPECT_THAT(error_of("\n\n{{ 'a' + 1 }}"),
                HasSubstr("error at line 3: unsupported operand type(s) for +: 'str' and 'int'"));
    EXPECT_THAT(error_of("{{ 1 / 0 }}"), HasSubstr("division by zero"));
    EXPECT_THAT(error_of("{{ 'x'|trim('a', 2) }}"), HasSubstr("filter 'trim' takes at most 1 positional argument"));
    EXPECT_THAT(error_of("{{ [1]|join(sep=',') }}"), HasSubstr("unexpected keyword argument 'sep'"));
    EXPECT_THAT(error_of("{{ 'abc'() }}"), HasSubstr("'str' object is not callable"));
    EXPECT_THAT(error_of("{% set a, b = [1] %}"), HasSubstr("not enough values to unpack (expected 2, got 1)"));
    EXPECT_THAT(error_of("{% set x = 1 %}{% set x.y = 2 %}"),
                HasSubstr("cannot assign attribute on non-namespace object 'x'"));
    EXPECT_THAT(error_of("{{ 1 < 'a' }}"), HasSubstr("not supported between instances of 'int' and 'str'"));
    EXPECT_THAT(error_of("{{ x }}", ordered_json::array()), HasSubstr("context must be a JSON object"));
}

TEST(ChatTemplateErrors, RaiseExceptionMessageIsExact) {
    EXPECT_EQ(error_of("\n{{ raise_exception('Only ' ~ 2 ~ ' roles!') }}"), "Only 2 roles!");
    EXPECT_EQ(error_of("{% macro check() %}{{ raise_exception('from a macro') }}{% endmacro %}{{ check() }}"),
              "from a macro");
}

TEST(ChatTemplatePerformance, HundredMessagesRenderFast) {
    WP_REQUIRE_SHARED();
    const fs::path dir = shared_dir() / "tokenizers" / "qwen3";
    const auto tmpl = ChatTemplate::from_folder(dir);
    ordered_json ctx = ChatTemplate::special_tokens_context(dir);
    ctx["messages"] = ordered_json::array();
    for (int i = 0; i < 100; ++i)
        ctx["messages"].push_back({{"role", i % 2 ? "assistant" : "user"},
                                   {"content", "Message " + std::to_string(i) + std::string(200, '.')}});
    ctx["add_generation_prompt"] = true;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 10; ++i) tmpl->render(ctx);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / 10;
    EXPECT_LT(ms, 10.0 * kTimeScale);  // far above a release build's time, so that a loaded machine passes too
}

}  // namespace
}  // namespace wp::test
