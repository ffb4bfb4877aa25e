// `nef devices [--json]`: the hardware detection report.
#include <iostream>

#include "backends/registry.h"
#include "cli.h"

namespace nef::cli {

int cmd_devices(bool json) {
  const backend::DeviceReport& report = backend::detect();
  // Built fully before printing so a bad NEF_DEVICES fails without partial output.
  std::string text = json ? backend::to_json(report) + "\n" : backend::to_text(report);
  std::cout << text << std::flush;
  return 0;
}

}  // namespace nef::cli
