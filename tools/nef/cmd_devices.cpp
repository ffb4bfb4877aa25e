// `nef devices [--json]`: the hardware detection report.
#include <iostream>

#include "cli.h"
#include "devices/devices.h"

namespace nef::cli {

int cmd_devices(bool json) {
  const devices::DeviceReport& report = devices::detect();
  // Built fully before printing so a bad NEF_DEVICES fails without partial output.
  std::string text = json ? devices::to_json(report) + "\n" : devices::to_text(report);
  std::cout << text << std::flush;
  return 0;
}

}  // namespace nef::cli
