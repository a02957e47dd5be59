// Whether the client of a request is still there, asked without writing to it. cpp-httplib 0.11
// (Debian 12) tells a handler nothing about its connection, and a non-streamed reply writes
// nothing until it is complete, so a client that gave up would keep its generation running. The
// probe finds the request's socket by its two addresses and looks for the peer's FIN or a reset.
#pragma once

#include <string>

namespace wp::server {

class ConnectionProbe {
public:
    // The socket of this process whose local and peer addresses are these (as httplib's Request
    // gives them); when none is found, gone() is always false.
    ConnectionProbe(const std::string& local_addr, int local_port, const std::string& remote_addr, int remote_port);

    // True once the peer has closed or reset the connection. Does not read or write.
    bool gone() const;
    bool found() const { return fd_ >= 0; }

private:
    int fd_ = -1;
};

}  // namespace wp::server
