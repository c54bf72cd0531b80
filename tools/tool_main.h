// What the command-line tools (tools/export, tools/infer) do around their work:
// bad input (sscl::Error) and anything unexpected become one line on stderr and
// exit status 1.
#pragma once

#include <exception>
#include <iostream>

#include "core/error.h"

namespace sscl {

template <typename Body>
int run_tool_main(Body&& body) {
  try {
    return body();
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: unexpected: " << e.what() << "\n";
  }
  return 1;
}

}  // namespace sscl
