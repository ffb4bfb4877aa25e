// `nef`: run, inspect and describe NEF graphs. Exit status: 0 ok, 1 error (one stderr line
// "nef: <ErrorType>: <message>"), 2 usage error.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "cli.h"
#include "devices/cpu_info.h"
#include "nef/error.h"

namespace {

// Keeps the error report on one line whatever the message contains.
std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

int report(const char* type, const std::string& message) {
  std::cerr << "nef: " << type << ": " << one_line(message) << std::endl;
  return 1;
}

int usage(const std::string& message) {
  std::cerr << "nef: usage error: " << one_line(message) << " (see 'nef --help')" << std::endl;
  return 2;
}

int run_main(int argc, char** argv) {
  CLI::App app{"NEF: run, inspect, import and describe NEF computation graphs (.nef files)", "nef"};
  app.require_subcommand(0, 1);
  bool version = false;
  app.add_flag("--version", version, "Print the version and exit");

  nef::cli::RunOptions run;
  CLI::App* run_cmd =
      app.add_subcommand("run", "Run a .nef graph on .npy inputs, write .npy outputs");
  run_cmd->add_option("FILE", run.file, "The .nef file")->required();
  run_cmd->add_option("-i,--input", run.inputs, "An input as NAME=FILE.npy (repeat per input)")
      ->allow_extra_args(false);
  run_cmd->add_option("-o,--output", run.output_dir, "Directory for <output>.npy files (created)")
      ->capture_default_str();
  run_cmd->add_option("--device", run.device, "Where to run: auto or cpu")
      ->check(CLI::IsMember({"auto", "cpu"}))
      ->capture_default_str();
  run_cmd->add_flag("--plan", run.plan, "Print the execution plan (ops, shapes, devices)");
  run_cmd->add_flag("--timing", run.timing, "Print load, first-run and warm-run times");
  run_cmd->add_flag("--profile", run.profile,
                    "Print each kernel's median time (warm runs) and the time per op");
  run_cmd->add_option("--repeat", run.repeat, "Runs in total; runs after the first are warm")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();

  nef::cli::InspectOptions inspect;
  CLI::App* inspect_cmd = app.add_subcommand("inspect", "Show a .nef file's nodes and tensors");
  inspect_cmd->add_option("FILE", inspect.file, "The .nef file")->required();
  auto* json_flag = inspect_cmd->add_flag(
      "--json", inspect.json, "Print the JSON header (with --plan/--memory/--passes: as JSON)");
  auto* dot_flag = inspect_cmd->add_flag("--dot", inspect.dot, "Print a Graphviz dot graph");
  auto* passes_flag = inspect_cmd->add_flag("--passes", inspect.passes,
                                            "Print the IR text after each optimizer pass");
  auto* plan_flag = inspect_cmd->add_flag(
      "--plan", inspect.plan, "Print the compiled plan: kernels, fused ops, devices, memory");
  auto* memory_flag = inspect_cmd->add_flag(
      "--memory", inspect.memory, "Print the memory plan: planned peak, naive sum, offsets");
  json_flag->excludes(dot_flag);
  // One view at a time; --json only changes how the chosen one is printed.
  std::vector<CLI::Option*> views{dot_flag, passes_flag, plan_flag, memory_flag};
  for (size_t a = 0; a < views.size(); ++a)
    for (size_t b = a + 1; b < views.size(); ++b) views[a]->excludes(views[b]);

  bool devices_json = false;
  CLI::App* devices_cmd = app.add_subcommand("devices", "Show detected hardware and devices");
  devices_cmd->add_flag("--json", devices_json, "Print the report as JSON");

  std::string compile_file, compile_out;
  CLI::App* compile_cmd =
      app.add_subcommand("compile", "Write a copy of a .nef with its compiled plan embedded");
  compile_cmd->add_option("FILE", compile_file, "The .nef file")->required();
  compile_cmd->add_option("-o,--output", compile_out, "The .nef file to write")->required();

  nef::cli::ImportOptions import_opts;
  CLI::App* import_cmd = app.add_subcommand(
      "import", "Convert an ONNX model (default domain, opsets 7 to 27) to a .nef file");
  import_cmd->add_option("MODEL", import_opts.model, "The .onnx file")->required();
  import_cmd->add_option("-o,--output", import_opts.output, "The .nef file to write")->required();
  import_cmd
      ->add_option("--dim", import_opts.dims,
                   "Bind a symbolic input dim as NAME=VALUE (repeat per dim)")
      ->allow_extra_args(false);
  import_cmd->add_flag("--embed-plan", import_opts.embed_plan,
                       "Also store the compiled plan (compiler_cache \"embedded\")");

  std::string quant_in, quant_out;
  bool quant_int8 = false;
  CLI::App* quant_cmd = app.add_subcommand(
      "quantize", "Write a .nef with the weights of its matmuls quantized (int8)");
  quant_cmd->add_option("FILE", quant_in, "The .nef file")->required();
  quant_cmd->add_option("-o,--output", quant_out, "The .nef file to write")->required();
  quant_cmd->add_flag("--int8", quant_int8,
                      "int8 weights (a scale per 32 of each output channel), int8 activations");

  nef::cli::GenerateCliOptions gen;
  CLI::App* gen_cmd = app.add_subcommand(
      "generate", "Stream a GGUF language model's text for a prompt (Llama family)");
  gen_cmd->add_option("MODEL", gen.model, "The .gguf file")->required();
  gen_cmd->add_option("-p,--prompt", gen.prompt, "The prompt text")->required();
  gen_cmd->add_flag("--chat", gen.chat, "Send the prompt as a user message (chat template)");
  gen_cmd->add_option("-n,--max-tokens", gen.max_tokens, "Tokens to generate at most")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 30));
  gen_cmd->add_option("--temperature", gen.temperature, "Sampling temperature (0: greedy)")
      ->check(CLI::Range(0.0, 100.0));
  gen_cmd->add_option("--top-k", gen.top_k, "Keep the k most likely tokens (0: all)");
  gen_cmd->add_option("--top-p", gen.top_p, "Nucleus sampling threshold (1: off)");
  gen_cmd->add_option("--min-p", gen.min_p, "Drop tokens below min-p x the top one (0: off)");
  gen_cmd->add_option("--repeat-penalty", gen.repeat_penalty, "Repetition penalty (1: off)");
  gen_cmd->add_option("--seed", gen.seed, "Sampling seed");
  gen_cmd->add_option("--ctx", gen.context,
                      "KV-cache capacity in tokens (0: the model's, <= 4096)");
  gen_cmd->add_option("--stop", gen.stop, "A stop string (repeat per string)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage(e.what());
  }

  if (version) {
    std::cout << "nef " << nef::devices::library_version() << std::endl;
    return 0;
  }
  if (run_cmd->parsed()) return nef::cli::cmd_run(run);
  if (inspect_cmd->parsed()) return nef::cli::cmd_inspect(inspect);
  if (devices_cmd->parsed()) return nef::cli::cmd_devices(devices_json);
  if (compile_cmd->parsed()) return nef::cli::cmd_compile(compile_file, compile_out);
  if (import_cmd->parsed()) return nef::cli::cmd_import(import_opts);
  if (gen_cmd->parsed()) return nef::cli::cmd_generate(gen);
  if (quant_cmd->parsed()) return nef::cli::cmd_quantize(quant_in, quant_out, quant_int8);
  std::cerr << app.help();
  return usage(
      "a command is required: run, inspect, compile, import, quantize, generate or devices");
}

}  // namespace

int main(int argc, char** argv) {
  // Nothing escapes: every failure becomes an exit status and one line on stderr.
  try {
    return run_main(argc, argv);
  } catch (const nef::cli::UsageError& e) {
    return usage(e.what());
  } catch (const nef::Error& e) {
    return report(nef::error_code_name(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    return report(nef::error_code_name(nef::ErrorCode::OutOfMemory), "out of memory");
  } catch (const std::filesystem::filesystem_error& e) {
    return report(nef::error_code_name(nef::ErrorCode::Generic), e.what());
  } catch (const std::exception& e) {
    return report(nef::error_code_name(nef::ErrorCode::Generic), e.what());
  } catch (...) {
    return report(nef::error_code_name(nef::ErrorCode::Generic), "unknown error");
  }
}
