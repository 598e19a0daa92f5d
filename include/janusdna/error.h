// Errors thrown by the janusdna library. Library code never prints or exits: it throws these, and the
// subcommands turn them into "janusdna CMD: message" and a non-zero exit status.
#pragma once
#include <stdexcept>
#include <string>

namespace janusdna {

// Any failure the user can act on: bad input file, bad option value, unreadable model, failed write.
// The message is complete and names the file and the record or line where one is known.
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

} // namespace janusdna
