// A stop asked for from outside (SIGINT, SIGTERM): the signal handler only sets a
// flag, and the trainer looks at it between iterations, writes a checkpoint and
// ends the run with sscl::Interrupted.
#pragma once

namespace sscl {

// Installs the handlers for SIGINT and SIGTERM. Each resets itself to the default
// action, so a second Ctrl-C kills at once.
void install_stop_handlers();
// The signal that asked for the stop, or 0.
int stop_requested();
// For tests, and for a stop that does not come from a signal.
void request_stop(int signal);
void clear_stop_request();

}  // namespace sscl
