// gaze train <stage> — run one training stage (--nproc N: data-parallel on this machine);
// gaze eval — angular error of a checkpoint.
#include <ATen/Parallel.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "cli/commands.h"
#include "datasets/open_dataset.h"
#include "export/export_job.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/parallel.h"
#include "libgaze/core/strings.h"
#include "trainers/baseline_config.h"
#include "trainers/evaluate.h"
#include "trainers/personalize.h"
#include "trainers/pipeline.h"
#include "trainers/probe.h"
#include "trainers/trainer.h"

namespace gaze::cli {
namespace {

// A TCP port nobody listens on right now, for the local workers' rendezvous.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    if (fd >= 0) ::close(fd);
    throw Error(std::string("--nproc: cannot find a free local port: ") + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

// torchrun on one machine: starts `nproc` copies of this command line (without --nproc) as
// ranks 0..nproc-1 with the torchrun variables set, waits for all, and stops the others as soon
// as one fails. Each worker gets its share of the cores unless run.threads says otherwise.
void launch_local_workers(int64_t nproc, const Config& config) {
  std::vector<std::string> args;
  const std::vector<std::string>& line = command_line();
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == "--nproc") {
      ++i;
    } else if (!starts_with(line[i], "--nproc=")) {
      args.push_back(line[i]);
    }
  }
  if (config.run.threads == 0) {
    const int64_t cores = std::max<int64_t>(1, int64_t(std::thread::hardware_concurrency()));
    args.push_back("run.threads=" + std::to_string(std::max<int64_t>(1, cores / nproc)));
  }
  const std::string port = std::to_string(free_port());
  std::vector<pid_t> workers;
  for (int64_t rank = 0; rank < nproc; ++rank) {
    const pid_t pid = ::fork();
    if (pid < 0) throw Error(std::string("--nproc: cannot start a worker: ") + std::strerror(errno));
    if (pid == 0) {
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", port.c_str(), 1);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "gaze: error: --nproc: cannot run /proc/self/exe: %s\n", std::strerror(errno));
      ::_exit(127);
    }
    workers.push_back(pid);
  }
  std::string failure;
  for (size_t left = workers.size(); left > 0; --left) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) break;
    const auto rank = std::find(workers.begin(), workers.end(), pid) - workers.begin();
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok && failure.empty()) {
      failure = "worker rank " + std::to_string(rank) + " of " + std::to_string(nproc) +
                (WIFSIGNALED(status) ? " was killed by signal " + std::to_string(WTERMSIG(status))
                                     : " exited with code " + std::to_string(WEXITSTATUS(status)));
      for (pid_t other : workers) {
        if (other != pid) ::kill(other, SIGTERM);
      }
    }
  }
  if (!failure.empty()) throw Error("--nproc: " + failure + "; the other workers were stopped");
}

}  // namespace

static std::vector<std::string> g_command_line;
void set_command_line(int argc, char** argv) { g_command_line.assign(argv, argv + argc); }
const std::vector<std::string>& command_line() { return g_command_line; }

void register_train(CLI::App& app) {
  auto* command = app.add_subcommand("train", "run a training stage: teacher-mae, distill, adapters or baseline");
  auto options = std::make_shared<ConfigOptions>();
  auto stage = std::make_shared<std::string>();
  auto resume = std::make_shared<bool>(false);
  auto stop_at = std::make_shared<int64_t>(-1);
  auto nproc = std::make_shared<int64_t>(1);
  command->add_option("stage", *stage, "teacher-mae | distill | adapters | baseline (model.arch: gazenet, ...)")
      ->required()
      ->check(CLI::IsMember({"teacher-mae", "distill", "adapters", "baseline"}));
  command->add_flag("--resume", *resume, "continue from <run>/checkpoints/last.h5 if it exists");
  command->add_option("--stop-at", *stop_at, "stop after this step with a checkpoint (a slice; --resume continues)");
  command
      ->add_option("--nproc", *nproc,
                   "data-parallel: start N local workers (torchrun-style), each on batch_size/N of every batch")
      ->check(CLI::Range(1, 256));
  options->add_to(*command);
  command->callback([options, stage, resume, stop_at, nproc] {
    Config config = options->load();
    complete_stage_config(*stage, config);  // as gaze run completes its stages
    if (*nproc > 1 && !std::getenv("WORLD_SIZE")) return launch_local_workers(*nproc, config);
    const Distributed dist = Distributed::from_environment(std::chrono::milliseconds(config.run.dist_timeout_s * 1000));
    auto s = make_stage(*stage, config);
    const TrainResult r = run_training(config, *s, *resume, *stop_at, dist);
    if (!dist.is_root()) return;
    std::printf("%s: steps %lld..%lld in %.1f s; %s\n", stage->c_str(), (long long)r.first_step, (long long)r.steps,
                r.seconds,
                r.model_path.empty() ? ("stopped; resume from " + r.run_dir + "/checkpoints/last.h5").c_str()
                                     : ("model " + r.model_path).c_str());
    for (const auto& [name, value] : r.last_metrics) std::printf("  %s %.6g\n", name.c_str(), value);
  });
}

void register_eval(CLI::App& app) {
  auto* command = app.add_subcommand("eval", "angular error (mean, median, p95, per participant) of a checkpoint");
  auto options = std::make_shared<ConfigOptions>();
  auto checkpoint = std::make_shared<std::string>();
  auto source = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto output = std::make_shared<std::string>();
  command->add_option("--checkpoint", *checkpoint, "model checkpoint (.h5)")->required();
  command->add_option("source", *source, "dataset to evaluate on (overrides data.source)");
  command->add_flag("--json", *json, "print one JSON object");
  command->add_option("-o,--output", *output, "also write the JSON here");
  options->add_to(*command);
  command->callback([options, checkpoint, source, json, output] {
    Config config = options->load(*source);
    at::set_num_threads(resolve_threads(config.run.threads));
    GazeNet model = load_model(*checkpoint);
    const auto data = open_dataset(config.data);
    const EvalResult r = evaluate(model, *data, config);
    if (!output->empty()) write_text_atomically(*output, eval_json(r).dump(2) + "\n");
    std::printf("%s\n", *json ? eval_json(r).dump(2).c_str() : eval_markdown(r).c_str());
  });
}

void register_probe(CLI::App& app) {
  auto* command = app.add_subcommand(
      "probe",
      "linear probes: how much gaze each stage's features hold (ridge fitted on data.split, scored on "
      "--heldout-split)");
  auto options = std::make_shared<ConfigOptions>();
  auto checkpoint = std::make_shared<std::string>();
  auto source = std::make_shared<std::string>();
  auto heldout = std::make_shared<std::string>("validation");
  auto grid = std::make_shared<int64_t>(4);
  auto json = std::make_shared<bool>(false);
  auto output = std::make_shared<std::string>();
  command->add_option("--checkpoint", *checkpoint, "model checkpoint (.h5)")->required();
  command->add_option("source", *source, "dataset (overrides data.source); fitted on its data.split");
  command->add_option("--heldout-split", *heldout, "the split the probes are scored on (default validation)");
  command->add_option("--grid", *grid, "grid pooling: GxG averages per stage (default 4)")->check(CLI::Range(1, 16));
  command->add_flag("--json", *json, "print one JSON object");
  command->add_option("-o,--output", *output, "also write the JSON here");
  options->add_to(*command);
  command->callback([options, checkpoint, source, heldout, grid, json, output] {
    const Config config = options->load(*source);
    Config scored = config;
    scored.data.split = *heldout;
    if (scored.data.split == config.data.split) throw Error("probe: --heldout-split must differ from data.split");
    at::set_num_threads(resolve_threads(config.run.threads));
    GazeNet model = load_model(*checkpoint);
    const auto train = open_dataset(config.data), test = open_dataset(scored.data);
    ProbeReport r = linear_probe(model, *train, *test, config, *grid);
    r.checkpoint = *checkpoint;
    if (!output->empty()) write_text_atomically(*output, r.json().dump(2) + "\n");
    std::printf("%s\n", *json ? r.json().dump(2).c_str() : r.markdown().c_str());
  });
}

}  // namespace gaze::cli

namespace gaze::cli {

void register_personalize(CLI::App& app) {
  auto* command = app.add_subcommand("personalize", "per-user last-stage adapters from k calibration images");
  auto options = std::make_shared<ConfigOptions>();
  auto checkpoint = std::make_shared<std::string>();
  auto source = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto kernel = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  command->add_option("--checkpoint", *checkpoint, "generalised base model (.h5)");
  command->add_option("--kernel", *kernel,
                      "calibrate inside this exported kernel folder instead (dftgaze_personalize, the device's code): "
                      "user_<id>.gzu blobs, the kernel's error before and after");
  command->add_option("source", *source, "the users' images (overrides data.source; e.g. the test split)");
  command->add_option("-o,--output", *output, "folder for user_<id>.h5 (or .gzu with --kernel) files")->required();
  command->add_flag("--json", *json, "with --kernel: print one JSON object");
  options->add_to(*command);
  command->callback([options, checkpoint, source, output, kernel, json] {
    Config config = options->load(*source);
    if (!kernel->empty()) {
      const KernelUsersReport r = personalize_users_in_kernel(config, *kernel, *output);
      std::printf("%s\n", *json ? r.json().dump(2).c_str() : r.markdown().c_str());
      return;
    }
    if (checkpoint->empty()) throw Error("gaze personalize: --checkpoint is required (or --kernel)");
    at::set_num_threads(resolve_threads(config.run.threads));  // as training does
    GazeNet base = load_model(*checkpoint);
    const auto users = open_dataset(config.data);
    const auto replay = open_replay_dataset(config);
    const PersonalizeResult r = personalize(base, *users, replay.get(), config, *output);
    std::printf("| participant | eval frames | before (deg) | after k=%lld (deg) | file |\n|---|---|---|---|---|\n",
                (long long)config.personalize.k);
    for (const auto& u : r.users) {
      std::printf("| %lld | %lld | %.3f | %.3f | %s |\n", (long long)u.participant, (long long)u.eval_frames,
                  u.before_deg, u.after_deg, u.adapter_file.c_str());
    }
    std::printf("| **mean** | | %.3f | %.3f | |\n\nerror vs k:", r.before_deg, r.after_deg);
    for (const auto& [k, e] : r.k_curve) std::printf(" k=%lld: %.3f", (long long)k, e);
    std::printf("\n%.2f s per user to calibrate at k=%lld (%.2f s with the k curve and evaluation)\n",
                r.calibrate_seconds_per_user, (long long)config.personalize.k, r.seconds_per_user);
  });
}

}  // namespace gaze::cli

namespace gaze::cli {

void register_run(CLI::App& app) {
  auto* command = app.add_subcommand("run", "the end-to-end pipeline: data -> teacher -> student -> users -> report");
  auto pipeline = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  command->add_option("pipeline", *pipeline, "pipeline YAML (e.g. configs/pipeline/demo.yaml)")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option("overrides", *overrides, "key.sub=value overrides");
  auto protocol = std::make_shared<bool>(false);
  command->add_flag("--protocol", *protocol,
                    "print where this run departs from the paper and the values it chooses where the paper is "
                    "silent (its report's lists), then stop: nothing is rendered or trained");
  command->callback([pipeline, overrides, protocol] {
    const Config config = load_config(*pipeline, *overrides);
    if (*protocol) {
      const PipelineProtocol p = describe_pipeline(config);
      std::printf("%s", protocol_markdown(p.deviations, p.ours).c_str());
      return;
    }
    const PipelineReport r = run_pipeline(config);
    std::printf("%s\nreport: %s (also %s, %s, %s)\n", r.markdown.c_str(), r.markdown_path.c_str(), r.csv_path.c_str(),
                r.json_path.c_str(), r.svg_path.c_str());
  });
}

}  // namespace gaze::cli
