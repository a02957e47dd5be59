// Server-sent events (the WHATWG "event stream" format) read incrementally: bytes arrive in network
// chunks that split lines anywhere, lines end in "\n", "\r\n" or "\r", lines starting with ':' are
// comments (keep-alives), and an event ends at a blank line. Only "event" and "data" fields matter
// here; a data field of several lines is joined with "\n". Not thread-bound: one parser per stream.
#pragma once

#include <QByteArray>
#include <QList>

namespace wp::ui {

struct SseEvent {
    QByteArray event;  // the "event:" field; empty means "message"
    QByteArray data;
};

class SseParser {
public:
    // The most a line, or an event's data, may hold: past it the stream is no SSE we can read (a
    // server that never sends a line end would fill the memory).
    static constexpr qsizetype kMaxEventBytes = 4 * 1024 * 1024;

    // The events completed by `bytes`. Once a line or an event outgrows kMaxEventBytes, nothing more
    // is read (overflowed() says so): the caller ends the stream.
    QList<SseEvent> feed(QByteArrayView bytes);
    bool overflowed() const { return overflowed_; }
    // Whether the stream so far ends inside an event (data received but no blank line yet): at the
    // end of a stream that event is dropped, as the format says, and the stream was cut.
    bool midEvent() const { return !line_.isEmpty() || hasField_; }

private:
    void takeLine(QList<SseEvent>& out);

    QByteArray line_;  // the current line, without its end
    bool afterCR_ = false;  // the last byte was '\r': a '\n' right after it ends nothing more
    bool hasField_ = false;
    SseEvent pending_;
    bool hasData_ = false;
    bool overflowed_ = false;
};

}  // namespace wp::ui
