// A shared library without one registration line, for the plugin loader's
// refusal (plugin_test.cpp).
extern "C" int sscl_test_plugin_registers_nothing() { return 0; }
