#include "engine/sse_parser.h"

namespace wp::ui {

QList<SseEvent> SseParser::feed(QByteArrayView bytes) {
    QList<SseEvent> out;
    for (const char c : bytes) {
        if (overflowed_) break;
        if (c == '\n' && afterCR_) {  // the second half of "\r\n"
            afterCR_ = false;
            continue;
        }
        afterCR_ = c == '\r';
        if (c == '\n' || c == '\r') takeLine(out);
        else if (line_.size() + pending_.data.size() >= kMaxEventBytes) overflowed_ = true;
        else line_.append(c);
    }
    return out;
}

void SseParser::takeLine(QList<SseEvent>& out) {
    if (line_.isEmpty()) {  // a blank line: dispatch
        if (hasData_) out.push_back(pending_);
        pending_ = {};
        hasData_ = hasField_ = false;
        return;
    }
    QByteArray line;
    line.swap(line_);
    if (line.startsWith(':')) return;  // a comment
    const qsizetype colon = line.indexOf(':');
    const QByteArray field = colon < 0 ? line : line.left(colon);
    QByteArray value = colon < 0 ? QByteArray() : line.mid(colon + 1);
    if (value.startsWith(' ')) value.remove(0, 1);
    hasField_ = true;
    if (field == "data") {
        if (hasData_) pending_.data.append('\n');
        pending_.data.append(value);
        hasData_ = true;
    } else if (field == "event") {
        pending_.event = value;
        // llama.cpp's server has sent failures as "error: {json}" lines, a field of their own: kept as
        // an event named "error" with that JSON as its data.
    } else if (field == "error") {
        pending_.event = "error";
        if (hasData_) pending_.data.append('\n');
        pending_.data.append(value);
        hasData_ = true;
    }  // id, retry and unknown fields: nothing to do
}

}  // namespace wp::ui
