#include "libgaze/config/config.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "libgaze/config/run_dir.h"
#include "libgaze/config/stage_set.h"
#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"
#include "tests/test_util.h"

using namespace gaze;
using Catch::Contains;

TEST_CASE("defaults resolve the student preset", "[config]") {
  const Config c = default_config();
  CHECK(c.model.arch == "student");
  CHECK(c.model.depths == std::vector<int64_t>{2, 2, 6, 2});
  CHECK(c.model.dims == std::vector<int64_t>{40, 20, 40, 80});
  CHECK(c.model.adapter.reduction == 4);
  CHECK(c.model.adapter.slope == Approx(0.01));
  CHECK(c.model.head.uncertainty);
}

TEST_CASE("overriding the arch of a resolved config switches the preset", "[config]") {
  Config c = default_config();
  apply_override(c, "model.arch=teacher");
  validate_config(c);
  CHECK(c.model.dims == std::vector<int64_t>{40, 80, 160, 320});
  Config custom = default_config({"model.arch=custom", "model.depths=[1,1,1,1]", "model.dims=[8,8,8,8]"});
  validate_config(custom);
  CHECK(custom.model.dims == std::vector<int64_t>{8, 8, 8, 8});  // explicit values stay
}

TEST_CASE("the published baselines are architectures too, with nothing to size", "[config]") {
  for (const auto& arch : baseline_archs()) {
    INFO(arch);
    const Config c = default_config({"model.arch=" + arch, "data.input_size=[36,60]"});
    CHECK(c.model.dims.empty());  // no ConvNeXt preset, and the mae.patch grid does not apply
    CHECK(is_baseline_arch(arch));
  }
  CHECK_FALSE(is_baseline_arch("student"));
  CHECK_THROWS_WITH(default_config({"model.arch=rtgen"}),
                    Contains("unknown architecture 'rtgen'; did you mean 'rtgene'"));
  // Pipelines: the four datasets and the three baselines by name, typos named.
  const Config p =
      default_config({"pipeline.datasets=[mpiigaze,mpiifacegaze,aea,openeds]", "pipeline.baselines=[gazenet]"});
  CHECK(p.pipeline.datasets.size() == 4);
  CHECK_THROWS_WITH(default_config({"pipeline.baselines=[gazetr]"}),
                    Contains("pipeline.baselines: unknown baseline 'gazetr'"));
  CHECK_THROWS_WITH(default_config({"pipeline.datasets=[mpigaze]"}),
                    Contains("unknown dataset 'mpigaze'; did you mean 'mpiigaze'"));
  CHECK(config_hash(p).size() == 8);
  CHECK(config_hash(p) != config_hash(default_config()));
  CHECK(config_hash(p) == config_hash(default_config({"pipeline.datasets=[mpiigaze,mpiifacegaze,aea,openeds]",
                                                      "pipeline.baselines=[gazenet]"})));
}

TEST_CASE("a file and overrides set typed values and remember where", "[config]") {
  testing::TempDir dir;
  const std::string path = dir.write("m.yaml",
                                     "model:\n"
                                     "  arch: teacher\n"
                                     "  adapter:\n"
                                     "    slope: 0.2\n"
                                     "run: {seed: 7}\n");
  const Config c = load_config(path, {"run.threads=2", "model.head.uncertainty=false"});
  CHECK(c.model.dims == std::vector<int64_t>{40, 80, 160, 320});
  CHECK(c.model.adapter.slope == Approx(0.2));
  CHECK(c.run.seed == 7);
  CHECK(c.run.threads == 2);
  CHECK_FALSE(c.model.head.uncertainty);
  CHECK(config_origin(c, "model.arch") == path + ":2:9");
  CHECK(config_origin(c, "run.threads") == "command line 'run.threads=2'");
  CHECK(config_origin(c, "run.name") == "default");
}

TEST_CASE("unknown keys are rejected with file:line:column and the nearest key", "[config]") {
  testing::TempDir dir;
  const std::string path = dir.write("bad.yaml", "model:\n  dimz: [1, 2, 3, 4]\n");
  CHECK_THROWS_WITH(load_config(path), path + ":2:3: unknown key 'model.dimz'; did you mean 'model.dims'?");
  CHECK_THROWS_WITH(parse_config("modle: {}\n", "x.yaml"),
                    Contains("x.yaml:1:1: unknown key 'modle'") && Contains("did you mean"));
  CHECK_THROWS_WITH(default_config({"model.adaptor.slope=1"}),
                    "command line 'model.adaptor.slope=1': unknown key 'model.adaptor.slope'; "
                    "did you mean 'model.adapter.slope'?");
}

TEST_CASE("type errors name the key, the value and file:line:column", "[config]") {
  CHECK_THROWS_WITH(parse_config("run:\n  seed: abc\n", "t.yaml"),
                    "t.yaml:2:9: run.seed: expected an integer, got 'abc'");
  CHECK_THROWS_WITH(parse_config("model:\n  depths: [2, x, 6, 2]\n", "t.yaml"),
                    "t.yaml:2:15: model.depths: expected a list of integers, got 'x'");
  CHECK_THROWS_WITH(parse_config("model:\n  head: 3\n", "t.yaml"),
                    "t.yaml:2:9: model.head: expected a section (a map of keys), got '3'");
  CHECK_THROWS_WITH(parse_config("model:\n  adapter: {enabled: maybe}\n", "t.yaml"),
                    Contains("t.yaml:2:22: model.adapter.enabled: expected a boolean"));
  CHECK_THROWS_WITH(default_config({"run.seed=1.5"}),
                    "command line 'run.seed=1.5': run.seed: expected an integer, got '1.5'");
  CHECK_THROWS_WITH(default_config({"run.seed"}), Contains("expected key.sub=value"));
  CHECK(default_config({"run.name=x", "train.init="}).train.init.empty());  // nothing = empty string
  CHECK_THROWS_WITH(default_config({"run.seed.x=1"}), Contains("'run.seed' is a value"));
}

TEST_CASE("YAML syntax errors carry the position", "[config]") {
  CHECK_THROWS_WITH(parse_config("model:\n  dims: [1, 2\n", "s.yaml"), Contains("s.yaml:") && Contains("invalid YAML"));
}

TEST_CASE("validation names the key and where its bad value came from", "[config]") {
  CHECK_THROWS_WITH(parse_config("model:\n  arch: studnet\n", "v.yaml"),
                    "v.yaml:2:9: model.arch: unknown architecture 'studnet'; did you mean "
                    "'student'?");
  CHECK_THROWS_WITH(default_config({"model.arch=custom", "model.dims=[8,8,8]", "model.depths=[1,1,1,1]"}),
                    Contains("model.dims: needs 4 entries"));
  CHECK_THROWS_WITH(default_config({"model.adapter.reduction=3"}),
                    Contains("model.adapter.reduction: must divide every stage width"));
  CHECK_THROWS_WITH(default_config({"run.threads=-1"}), Contains("run.threads: must be >= 0"));
  CHECK_THROWS_WITH(default_config({"personalize.calibration_window_ms=-5"}),
                    Contains("personalize.calibration_window_ms: must be >= 0"));
  // checked before it divides anything (it used to end in SIGFPE)
  CHECK_THROWS_WITH(default_config({"model.adapter.reduction=0"}), Contains("model.adapter.reduction: must be >= 1"));
  CHECK_THROWS_WITH(default_config({"data.train_people=0"}), Contains("data.train_people: must be >= 1"));
  CHECK(default_config({"data.train_people=12"}).data.train_people == 12);
  // The renderer's held-out condition knobs (ranges ordered, within what draws a drawable eye).
  CHECK_THROWS_WITH(default_config({"synth.eye_distance_mm=[35,29]"}),
                    Contains("synth.eye_distance_mm: needs [min, max] within 18..60 mm"));
  CHECK_THROWS_WITH(default_config({"synth.camera_tilt_deg=[0,60]"}),
                    Contains("synth.camera_tilt_deg: needs [yaw, pitch]"));
  CHECK_THROWS_WITH(default_config({"synth.anatomy_spread=3"}), Contains("synth.anatomy_spread: must be in 0..2.5"));
  CHECK_THROWS_WITH(default_config({"synth.light_gradient=1"}), Contains("synth.light_gradient: must be in [0, 1)"));
  CHECK_THROWS_WITH(default_config({"synth.exposure=[0.5]"}), Contains("synth.exposure: needs [min, max]"));
  CHECK_NOTHROW(default_config({"synth.leds=0", "synth.anatomy_spread=0", "synth.iris_brightness=[40,40]"}));
  CHECK_THROWS_WITH(default_config({"train.augmentation.scale=-0.1"}),
                    Contains("train.augmentation.scale: must be in 0..0.5"));
  CHECK(default_config({"train.augmentation.scale=0.2"}).train.augmentation.scale == 0.2);
  CHECK_THROWS_WITH(default_config({"train.augmentation.focal=-2"}),
                    Contains("train.augmentation.focal: must be in 0..100 image widths, or -1"));
  // Auto is resolved by gaze run from the data it renders; a config on its own cannot know the camera.
  CHECK_THROWS_WITH(default_config({"train.augmentation.focal=-1"}),
                    Contains("train.augmentation.focal: -1 (auto) belongs in a gaze run stage's set"));
  CHECK_THROWS_WITH(default_config({"train.augmentation.focal=0.7", "data.eye=pair"}),
                    Contains("train.augmentation.focal: is per eye image: not with data.eye=pair"));
  CHECK_THROWS_WITH(default_config({"train.augmentation.focal=0.7", "data.source=mpiigaze:/data/MPIIGaze"}),
                    Contains("MPII's normalised labels"));
  CHECK_THROWS_WITH(default_config({"train.augmentation.warp=true"}),
                    Contains("train.augmentation.warp: turns the camera: needs its focal length"));
  CHECK_THROWS_WITH(default_config({"train.augmentation.focal=0.7", "train.augmentation.roll=5"}),
                    Contains("train.augmentation.roll: turns the camera through the warp: needs"));
  CHECK_THROWS_WITH(default_config({"train.augmentation.focal=0.7", "train.augmentation.roll=50"}),
                    Contains("train.augmentation.roll: must be in 0..45 degrees"));
  CHECK_THROWS_WITH(default_config({"train.augmentation.tilt=[10]"}),
                    Contains("train.augmentation.tilt: needs [yaw, pitch], each within +-45 degrees"));
  CHECK_NOTHROW(default_config({"train.augmentation.focal=0.7", "train.augmentation.warp=true"}));
  CHECK_THROWS_WITH(default_config({"train.ema=1"}), Contains("train.ema: must be in [0, 1) (0 = off)"));
  CHECK_THROWS_WITH(default_config({"train.ema=-0.5"}), Contains("train.ema: must be in [0, 1)"));
  CHECK(default_config({"train.ema=0.99"}).train.ema == 0.99);
}

TEST_CASE("hostile configs: sizes, names and YAML that would be read wrongly are refused", "[config]") {
  // Sizes are bounded before anything allocates (model.depths=[1000000,...] used to try ~100 GB).
  CHECK_THROWS_WITH(default_config({"model.arch=custom", "model.depths=[1000000,2,6,2]", "model.dims=[40,80,160,320]"}),
                    Contains("model.depths: at most 64 blocks per stage"));
  CHECK_THROWS_WITH(
      default_config({"model.arch=custom", "model.depths=[64,64,64,64]", "model.dims=[4096,4096,4096,4096]"}),
      Contains("GB of fp32 weights"));
  CHECK_THROWS_WITH(default_config({"data.workers=1000"}), Contains("data.workers: at most 256"));
  CHECK_THROWS_WITH(default_config({"run.threads=5000"}), Contains("run.threads: at most 1024"));
  CHECK_THROWS_WITH(default_config({"data.input_size=[96,100000]"}), Contains("data.input_size: at most 4096"));
  for (const char* grid : {"model.head.grid=[3]", "model.head.grid=[0,4]", "model.head.grid=[3,17]"}) {
    CHECK_THROWS_WITH(default_config({grid}), Contains("model.head.grid: needs [rows, cols], each in 1..16"));
  }
  // A run name cannot climb out of run.out_dir.
  for (const char* name : {"run.name=../../x", "run.name=/tmp/x", "run.name=..", "run.name=a/b"}) {
    CHECK_THROWS_WITH(default_config({name}), Contains("run.name: must be one folder name inside run.out_dir"));
  }
  // YAML that a reader would take one way and we another.
  testing::TempDir dir;
  dir.write("dup.yaml", "train:\n  steps: 5\n  lr: 0.1\n  steps: 7\n");
  CHECK_THROWS_WITH(load_config(dir.file("dup.yaml")),
                    Contains("dup.yaml:4:3: duplicate key 'train.steps' (first set at ") && Contains("dup.yaml:2:3"));
  dir.write("two.yaml", "train: {steps: 5}\n---\ntrain: {steps: 7}\n");
  CHECK_THROWS_WITH(load_config(dir.file("two.yaml")), Contains("two.yaml:") && Contains("a second YAML document"));
  std::filesystem::create_directories(dir.file("folder.yaml"));
  dir.write("child.yaml", "extends: folder.yaml\n");
  CHECK_THROWS_WITH(load_config(dir.file("child.yaml")), Contains("folder.yaml: not a config file (a directory?)"));
  CHECK_THROWS_WITH(parse_config("a: 1\n---\nb: 2\n", "text"), Contains("a second YAML document"));
  // A stray ',' where a node should start made yaml-cpp 0.7's LoadAll loop forever, allocating
  // (found by fuzz/fuzz_config; jbeder/yaml-cpp#1040); "- a\n," was read as [a] silently.
  for (const char* text : {",", ", x", "- a\n,", "--- ,", "#c\n,"}) {
    INFO(text);
    CHECK_THROWS_WITH(parse_config(text, "text"),
                      Contains("text:") && Contains("a ',' where a value or key should start"));
  }
  // A complex key is valid YAML but no config key (was yaml-cpp's "bad conversion", uncaught).
  CHECK_THROWS_WITH(parse_config("? [a, b]\n: 1\n", "text"), Contains("text:1:3: config: a key must be a name"));
  CHECK_THROWS_WITH(parse_config("train:\n  ? {a: 1}\n  : 2\n", "text"), Contains("train: a key must be a name"));
}

TEST_CASE("pipeline stages name files relative to the file that names them", "[config][pipeline]") {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.file("pipeline"));
  std::filesystem::create_directories(dir.file("stages"));
  dir.write("stages/a.yaml", "train: {steps: 7}\n");
  dir.write("base.yaml", "pipeline:\n  stages:\n    distill: {config: stages/a.yaml}\n");
  const std::string path =
      dir.write("pipeline/p.yaml",
                "extends: ../base.yaml\n"
                "pipeline:\n"
                "  stages:\n"
                "    teacher_mae: {config: ../stages/a.yaml, set: [train.steps=3, train.lr=0.5]}\n");
  const Config c = load_config(path, {"pipeline.stages.personalize.config=rel.yaml"});
  namespace fs = std::filesystem;
  CHECK(fs::path(c.pipeline.stages.teacher_mae.config) == (fs::path(dir.path()) / "stages/a.yaml").lexically_normal());
  CHECK(fs::path(c.pipeline.stages.distill.config) == (fs::path(dir.path()) / "stages/a.yaml").lexically_normal());
  CHECK(c.pipeline.stages.personalize.config == "rel.yaml");  // command line: from the working directory
  CHECK(c.pipeline.stages.teacher_mae.set == std::vector<std::string>{"train.steps=3", "train.lr=0.5"});
  CHECK(load_config(c.pipeline.stages.teacher_mae.config).train.steps == 7);
}

TEST_CASE("a stage override must be a valid assignment, checked when the pipeline loads", "[config][pipeline]") {
  CHECK_THROWS_WITH(parse_config("pipeline:\n  stages:\n    distill: {set: [train.stepz=3]}\n", "p.yaml"),
                    Contains("p.yaml:3:20: pipeline.stages.distill.set:") && Contains("did you mean 'train.steps'?"));
  CHECK_THROWS_WITH(parse_config("pipeline:\n  stages:\n    distill: {set: [train.steps=many]}\n", "p.yaml"),
                    Contains("train.steps: expected an integer"));
  CHECK_THROWS_WITH(parse_config("pipeline:\n  stages:\n    distill: {set: [pipeline.aea=x]}\n", "p.yaml"),
                    Contains("a stage cannot set pipeline.*"));
  // "openeds:key=value" is for one dataset's run of a per-dataset stage, checked the same way.
  const Config c = parse_config(
      "pipeline:\n  stages:\n    student_adapters: {set: [train.steps=3, 'openeds:train.augmentation.shift=0.12']}\n",
      "p.yaml");
  CHECK(c.pipeline.stages.student_adapters.set.at(1) == "openeds:train.augmentation.shift=0.12");
  CHECK_THROWS_WITH(
      parse_config("pipeline:\n  stages:\n    personalize: {set: ['openeds:train.shiftt=1']}\n", "p.yaml"),
      Contains("pipeline.stages.personalize.set:") && Contains("train.shiftt"));
  CHECK_THROWS_WITH(parse_config("pipeline:\n  stages:\n    personalize: {set: ['opends:train.steps=1']}\n", "p.yaml"),
                    Contains("'opends' is not a dataset (openeds, aea, mpiigaze, mpiifacegaze)"));
  CHECK_THROWS_WITH(parse_config("pipeline:\n  stages:\n    distill: {set: ['aea:train.steps=1']}\n", "p.yaml"),
                    Contains("pipeline.stages.distill.set:") && Contains("shared by all of them"));
}

TEST_CASE("pipeline.variants: a list of sections, read from files and overrides, dumped back, checked",
          "[config][pipeline]") {
  const Config c = parse_config(
      "pipeline:\n  variants:\n    - {name: grid, title: a grid head, set: ['model.head.grid=[3,4]']}\n"
      "    - name: full_student\n      models: [student]\n      set: [train.tune=all, 'aea:train.steps=9']\n",
      "p.yaml");
  REQUIRE(c.pipeline.variants.size() == 2);
  CHECK(c.pipeline.variants[0].name == "grid");
  CHECK(c.pipeline.variants[0].models == std::vector<std::string>{"teacher", "student"});  // the default
  CHECK(c.pipeline.variants[0].set == std::vector<std::string>{"model.head.grid=[3,4]"});
  CHECK(c.pipeline.variants[1].models == std::vector<std::string>{"student"});
  CHECK(config_origin(c, "pipeline.variants[1].models") == "p.yaml:5:15");
  // Dumped and read back: the same list (and the same text again).
  const std::string text = dump_config(c);
  const Config back = parse_config(text, "dumped.yaml");
  REQUIRE(back.pipeline.variants.size() == 2);
  CHECK(back.pipeline.variants[1].set == c.pipeline.variants[1].set);
  CHECK(dump_config(back) == text);
  // An override replaces the whole list.
  const Config o = default_config({"pipeline.variants=[{name: a, models: [teacher]}]"});
  REQUIRE(o.pipeline.variants.size() == 1);
  CHECK(o.pipeline.variants[0].models == std::vector<std::string>{"teacher"});
  CHECK(default_config({"pipeline.variants=[]"}).pipeline.variants.empty());
  // Refusals name the entry, the field and where it was set.
  const auto refused = [](const std::string& variants) { return "pipeline:\n  variants: " + variants + "\n"; };
  CHECK_THROWS_WITH(parse_config(refused("[{name: g, nme: x}]"), "p.yaml"),
                    Contains("p.yaml:2:24: unknown key 'pipeline.variants[0].nme'"));
  CHECK_THROWS_WITH(parse_config(refused("{name: g}"), "p.yaml"),
                    Contains("pipeline.variants: expected a list of sections"));
  CHECK_THROWS_WITH(parse_config(refused("[{title: x}]"), "p.yaml"),
                    Contains("pipeline.variants[0].name: every variant needs a name"));
  CHECK_THROWS_WITH(parse_config(refused("[{name: Grid}]"), "p.yaml"),
                    Contains("p.yaml:2:21: pipeline.variants[0].name: 'Grid': only a-z, 0-9 and _"));
  CHECK_THROWS_WITH(parse_config(refused("[{name: adapters}]"), "p.yaml"),
                    Contains("taken by the pipeline's own runs"));
  CHECK_THROWS_WITH(parse_config(refused("[{name: g}, {name: g}]"), "p.yaml"),
                    Contains("pipeline.variants[1].name: 'g' is also the name of variant 0"));
  CHECK_THROWS_WITH(parse_config(refused("[{name: g, models: [studnet]}]"), "p.yaml"),
                    Contains("pipeline.variants[0].models: unknown model 'studnet'; did you mean 'student'?"));
  CHECK_THROWS_WITH(parse_config(refused("[{name: g, models: []}]"), "p.yaml"), Contains("needs teacher, student"));
  CHECK_THROWS_WITH(parse_config(refused("[{name: g, set: [train.stepz=3]}]"), "p.yaml"),
                    Contains("pipeline.variants[0].set:") && Contains("did you mean 'train.steps'?"));
  CHECK_THROWS_WITH(parse_config(refused("[{name: g, set: [pipeline.aea=x]}]"), "p.yaml"),
                    Contains("a stage cannot set pipeline.*"));
  CHECK_THROWS_WITH(default_config({"pipeline.variants=[{name: g, models: [teacher, teacher]}]"}),
                    Contains("command line") && Contains("'teacher' is listed twice"));
  // Per-model sets: checked like set, and only for a model the variant trains.
  CHECK_THROWS_WITH(
      parse_config(refused("[{name: g, student_set: [train.augmentation.shfit=0.08]}]"), "p.yaml"),
      Contains("pipeline.variants[0].student_set:") && Contains("did you mean 'train.augmentation.shift'?"));
  CHECK_THROWS_WITH(parse_config(refused("[{name: g, models: [student], teacher_set: [train.steps=3]}]"), "p.yaml"),
                    Contains("p.yaml:2:56: pipeline.variants[0].teacher_set: the variant does not train the teacher"));
}

TEST_CASE("a stage's set entry splits into its dataset and its assignment", "[config][pipeline]") {
  CHECK(parse_stage_set_entry("train.steps=3").dataset.empty());
  CHECK(parse_stage_set_entry("aea:train.steps=3").dataset == "aea");
  CHECK(parse_stage_set_entry("aea:train.steps=3").assignment == "train.steps=3");
  // A ':' after the '=' is the value's ("pack:x.h5"), not a dataset.
  const StageSetEntry value = parse_stage_set_entry("data.source=pack:x.h5");
  CHECK(value.dataset.empty());
  CHECK(value.assignment == "data.source=pack:x.h5");
  CHECK_THROWS_WITH(parse_stage_set_entry("images:train.steps=3"), Contains("'images' is not a dataset"));
}

TEST_CASE("copy_explicit_keys carries what a file set, not the defaults", "[config][pipeline]") {
  const Config shared = parse_config("train: {batch_size: 8}\nrun: {seed: 5}\npipeline: {aea: /x}\n", "p.yaml");
  Config stage = parse_config("train: {batch_size: 64, steps: 9, lr: 0.1}\n", "s.yaml");
  copy_explicit_keys(shared, stage, {"pipeline."});
  CHECK(stage.train.batch_size == 8);  // the pipeline's choice wins over the stage file
  CHECK(stage.train.steps == 9);       // what the pipeline left alone stays the stage's
  CHECK(stage.train.lr == Approx(0.1));
  CHECK(stage.run.seed == 5);
  CHECK(stage.pipeline.aea.empty());  // skipped prefix
  CHECK(config_origin(stage, "train.batch_size") == "p.yaml:1:21");
  CHECK(config_origin(stage, "train.steps") == "s.yaml:1:32");
}

TEST_CASE("extends reads the parent first, the child overrides it", "[config]") {
  testing::TempDir dir;
  dir.write("base.yaml", "model: {arch: teacher}\nrun: {seed: 3, name: base}\n");
  const std::string child = dir.write("child.yaml", "extends: base.yaml\nrun: {name: child}\n");
  const Config c = load_config(child);
  CHECK(c.model.arch == "teacher");
  CHECK(c.run.seed == 3);
  CHECK(c.run.name == "child");
  dir.write("loop_a.yaml", "extends: loop_b.yaml\n");
  dir.write("loop_b.yaml", "extends: loop_a.yaml\n");
  CHECK_THROWS_WITH(load_config(dir.file("loop_a.yaml")), Contains("'extends' cycle"));
  CHECK_THROWS_WITH(load_config(dir.file("missing.yaml")), Contains("config file not found"));
}

TEST_CASE("the dumped config reads back to the same config", "[config]") {
  const Config a = default_config({"model.arch=teacher", "run.seed=11", "model.drop_path=0.1"});
  const std::string text = dump_config(a);
  CHECK(text.find("# teacher (ConvNeXt V2-Atto)") != std::string::npos);  // help as comments
  const Config b = parse_config(text, "dumped.yaml");
  CHECK(dump_config(b) == text);
  CHECK(b.model.dims == a.model.dims);
  CHECK(b.model.drop_path == Approx(0.1));
}

TEST_CASE("config_keys lists every leaf as a dotted path", "[config]") {
  const auto keys = config_keys();
  CHECK(std::find(keys.begin(), keys.end(), "model.adapter.slope") != keys.end());
  CHECK(std::find(keys.begin(), keys.end(), "run.seed") != keys.end());
  CHECK(std::find(keys.begin(), keys.end(), "model.adapter") == keys.end());
}

TEST_CASE("the run directory holds the resolved config", "[config][run_dir]") {
  testing::TempDir dir;
  const Config c = default_config({"run.out_dir=" + dir.path(), "run.name=exp1"});
  {
    const RunDir run = open_run_dir(c, false);
    CHECK(testing::read_file(run.config_path()) == dump_config(c));
    CHECK(std::filesystem::is_directory(run.checkpoint_dir()));
    // While it is open, the folder is locked: a second run on it is refused, naming the holder.
    CHECK_THROWS_WITH(open_run_dir(c, true),
                      Contains("exp1: in use by another gaze process (pid ") && Contains(std::to_string(::getpid())));
    // A killed writer's temporary file is removed by the next run that takes the lock.
    dir.write("exp1/checkpoints/last.h5.tmp-99999", "partial");
  }
  // Same config again is fine; a different one in the same folder is refused.
  CHECK_NOTHROW(open_run_dir(c, true));
  CHECK_FALSE(std::filesystem::exists(dir.file("exp1/checkpoints/last.h5.tmp-99999")));
  Config other = c;
  other.run.seed = 5;
  CHECK_THROWS_WITH(
      open_run_dir(other, true),
      Contains("exp1/config.yaml:") && Contains("holds a different config ('run.seed: 0', now 'run.seed: 5')"));
  // A config.yaml written before a key existed (here: without train.ema, and with an older help
  // comment) is the same config when that key has its default: an upgrade keeps run folders.
  std::string older = dump_config(c);
  const size_t ema = older.find("  ema: 0");
  REQUIRE(ema != std::string::npos);
  older.erase(ema, older.find('\n', ema) + 1 - ema);
  const size_t help = older.find("# optimiser steps");
  REQUIRE(help != std::string::npos);
  older.replace(help, 17, "# steps");
  dir.write("exp1/config.yaml", older);
  CHECK_NOTHROW(open_run_dir(c, true));
  CHECK(testing::read_file(dir.file("exp1/config.yaml")) == dump_config(c));
  older.replace(older.find("  seed: 0"), 9, "  seed: 4");
  dir.write("exp1/config.yaml", older);
  const ConfigDifference d = config_difference(older, "exp1/config.yaml", dump_config(c));
  CHECK(d.stored == "run.seed: 4");
  CHECK(d.ours == "run.seed: 0");
  CHECK(split(older, '\n').at(size_t(d.line - 1)).find("seed: 4") != std::string::npos);
  // A key nested three deep is named in full, on the line that holds it.
  Config staged = c;
  staged.pipeline.stages.student_adapters.set = {"train.steps=300"};
  const std::string staged_text = dump_config(staged);
  const ConfigDifference n = config_difference(staged_text, "p.yaml", dump_config(c));
  CHECK(n.stored == "pipeline.stages.student_adapters.set: [train.steps=300]");
  CHECK(n.ours == "pipeline.stages.student_adapters.set: []");
  CHECK(split(staged_text, '\n').at(size_t(n.line - 1)).find("set: [train.steps=300]") != std::string::npos);
  // A key inside an entry of a list of sections: the list's key, "[]", the entry's key.
  Config grid = default_config({"pipeline.variants=[{name: a}, {name: g, set: [\"model.head.grid=[3,4]\"]}]"});
  Config wide = grid;
  wide.pipeline.variants[1].set = {"model.head.grid=[4,4]"};
  const ConfigDifference v = config_difference(dump_config(grid), "p.yaml", dump_config(wide));
  CHECK_THAT(v.stored, Contains("pipeline.variants[].set: [") && Contains("model.head.grid=[3,4]"));
  CHECK_THAT(v.ours, Contains("pipeline.variants[].set: [") && Contains("model.head.grid=[4,4]"));
}
