// Errors a user can act on: every failure in core is a wp::Error whose message names the file,
// tensor or setting at fault.
#pragma once

#include <stdexcept>
#include <string>

namespace wp {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A long computation stopped because its caller asked (an atomic flag it polls).
class Cancelled : public Error {
public:
    Cancelled() : Error("cancelled") {}
};

}  // namespace wp
