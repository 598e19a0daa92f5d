// Clean exits on SIGINT, SIGTERM and SIGHUP: every output still being written lives in a temporary file that is
// registered here, and the handler removes them (with their .tbi/.csi), prints one line and exits 128 + signal,
// so an interrupted run leaves nothing behind, as on any other error.
#pragma once
#include <string>

namespace janusdna {

// Installs the handler; `label` starts its line ("janusdna track: interrupted (SIGINT) ...").
void install_interrupt_cleanup(const std::string& label);

// Registers / forgets a temporary file the handler must remove. Async-signal-safe to read from the handler;
// at most 64 at once (more throw Error). Called by the atomic writers, not by subcommands.
void track_temp_file(const std::string& path);
void untrack_temp_file(const std::string& path);

// A sentence the handler's line ends with, e.g. how to resume from the last checkpoint ("" for none).
void set_interrupt_hint(const std::string& hint);

} // namespace janusdna
