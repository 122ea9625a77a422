// gaze — the libgaze command-line tool.
#include <c10/util/Exception.h>

#include <cstdio>
#include <new>

#include "cli/commands.h"
#include "libgaze/core/allocator.h"
#include "libgaze/core/error.h"
#include "libgaze/core/log.h"

int main(int argc, char** argv) {
  gaze::keep_freed_memory();  // before any thread starts (allocator.h)
  gaze::cli::set_command_line(argc, argv);
  CLI::App app{"gaze — train, distil, personalise and export DFT Gaze eye-gaze models"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")->capture_default_str();
  app.set_version_flag("--version", "gaze (libgaze) 0.1.0");

  gaze::cli::register_info(app);
  gaze::cli::register_config(app);
  gaze::cli::register_import_checkpoint(app);
  gaze::cli::register_synth(app);
  gaze::cli::register_data(app);
  gaze::cli::register_pack(app);
  gaze::cli::register_train(app);
  gaze::cli::register_eval(app);
  gaze::cli::register_probe(app);
  gaze::cli::register_personalize(app);
  gaze::cli::register_run(app);
  gaze::cli::register_export(app);
  gaze::cli::register_bench(app);
  gaze::cli::register_bench_train(app);
  gaze::cli::register_reproduce(app);

  // Subcommand callbacks run inside parse(): logging must be configured before them.
  app.parse_complete_callback([&] { gaze::log_init(log_level); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help/--version are "parse errors" with code 0; real usage errors all exit 2.
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const gaze::Error& e) {
    std::fprintf(stderr, "gaze: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "gaze: error: out of memory (check sizes in the config: batch, input, model)\n");
    return 1;
  } catch (const c10::Error& e) {  // LibTorch: its message without the 30-line backtrace
    std::fprintf(stderr, "gaze: error: LibTorch: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gaze: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
