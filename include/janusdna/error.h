// Errors thrown by the janusdna library. Library code never prints or exits: it throws these, and the
// subcommands turn them into "janusdna CMD: message" and a non-zero exit status.
#pragma once
#include <functional>
#include <stdexcept>
#include <string>

namespace janusdna {

// Any failure the user can act on: bad input file, bad option value, unreadable model, failed write.
// The message is complete and names the file and the record or line where one is known.
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Receives one-line warnings ("building index ref.fa.fai"); the subcommand decides whether to print them.
using WarnFn = std::function<void(const std::string&)>;

} // namespace janusdna
