// _libgaze: the pybind11 extension behind `import libgaze` (the Python package wraps it).
//
// Arrays cross the boundary as numpy: images come back as uint8 H x W arrays that own their
// buffer (zero-copy: the decoded vector is moved into the array), gaze as float32. Every
// gaze::Error becomes a Python exception (RuntimeError subclass libgaze.Error) with the same
// one-line message the CLI prints.
#include <ATen/ATen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "datasets/open_dataset.h"
#include "datasets/preprocess.h"
#include "datasets/synth/synth_writer.h"
#include "export/export_job.h"
#include "export/onnx_export.h"
#include "libgaze/config/config.h"
#include "libgaze/core/allocator.h"
#include "libgaze/core/error.h"
#include "libgaze/core/json.h"
#include "libgaze/core/log.h"
#include "libgaze/metrics/angular_error.h"
#include "libgaze/models/model_stats.h"
#include "libgaze/models/param_groups.h"
#include "trainers/baseline_config.h"
#include "trainers/evaluate.h"
#include "trainers/personalize.h"
#include "trainers/pipeline.h"
#include "trainers/trainer.h"

namespace py = pybind11;
using namespace gaze;

namespace {

// A vector's storage handed to numpy without a copy.
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& data, std::vector<py::ssize_t> shape) {
  auto* owned = new std::vector<T>(std::move(data));
  py::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(shape, owned->data(), free_when_done);
}

py::array_t<float> tensor_to_numpy(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kFloat).contiguous();
  std::vector<float> data(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  std::vector<py::ssize_t> shape(c.sizes().begin(), c.sizes().end());
  return to_numpy(std::move(data), shape);
}

// A JSON value (reports, evaluation, bench) as the Python object json.loads would give.
py::object to_python(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return py::none();
    case Json::value_t::boolean:
      return py::bool_(j.get<bool>());
    case Json::value_t::number_integer:
      return py::int_(j.get<int64_t>());
    case Json::value_t::number_unsigned:
      return py::int_(j.get<uint64_t>());
    case Json::value_t::number_float:
      return py::float_(j.get<double>());
    case Json::value_t::string:
      return py::str(j.get<std::string>());
    case Json::value_t::array: {
      py::list out;
      for (const auto& item : j) out.append(to_python(item));
      return out;
    }
    case Json::value_t::object: {
      py::dict out;
      for (const auto& [key, value] : j.items()) out[py::str(key)] = to_python(value);
      return out;
    }
    default:
      throw Error("to_python: unsupported JSON value");
  }
}

// Runs `f` (returning Json) without the GIL, converts its result with it.
template <class F>
py::object json_call(F&& f) {
  Json result;
  {
    py::gil_scoped_release release;
    result = f();
  }
  return to_python(result);
}

py::dict sample_dict(Sample&& s) {
  py::dict d;
  const int32_t h = s.image.height, w = s.image.width, c = s.image.channels;
  d["image"] = c == 1 ? to_numpy(std::move(s.image.pixels), {h, w}) : to_numpy(std::move(s.image.pixels), {h, w, c});
  d["gaze"] = to_numpy(std::vector<float>(s.label.gaze.begin(), s.label.gaze.end()), {3});
  d["participant"] = s.label.participant;
  d["key"] = s.label.key;
  d["timestamp_us"] = s.label.timestamp_us;
  d["blink"] = s.label.blink;
  d["head"] = to_numpy(std::vector<float>(s.label.head.begin(), s.label.head.end()), {2});
  return d;
}

// Model + the config it was built from (for preprocessing).
struct PyModel {
  GazeNet net{nullptr};
  Config config;
};

using Images = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

// What the network reads from uint8 eye images (H x W or N x H x W): each resampled to the
// config's input size and normalised (datasets/preprocess.h), N x 3 x H x W.
at::Tensor network_input(const PyModel& m, const Images& images, const char* caller) {
  if (images.ndim() != 2 && images.ndim() != 3)
    throw Error(std::string(caller) + ": expected uint8 images H x W or N x H x W");
  const bool single = images.ndim() == 2;
  const int64_t n = single ? 1 : images.shape(0);
  const int32_t h = int32_t(images.shape(single ? 0 : 1)), w = int32_t(images.shape(single ? 1 : 2));
  const PreprocessOptions options = preprocess_options(m.config, false);
  at::Tensor batch = at::empty({n, 3, options.height, options.width});
  const size_t plane = size_t(h) * w;
  for (int64_t i = 0; i < n; ++i) {
    Sample s;
    s.image = Image(h, w);
    std::memcpy(s.image.pixels.data(), images.data() + i * plane, plane);
    preprocess_sample(s, options, 0, batch.data_ptr<float>() + i * 3 * options.height * options.width);
  }
  return batch;
}

py::tuple predict(PyModel& m, const Images& images) {
  const at::Tensor batch = network_input(m, images, "predict");
  at::Tensor out;
  {
    py::gil_scoped_release release;
    at::NoGradGuard no_grad;
    m.net->eval();
    out = m.net->forward(batch);
  }
  return py::make_tuple(tensor_to_numpy(gaze_directions(out)), tensor_to_numpy(gaze_log_scales(out)));
}

py::object forward(PyModel& m, py::array_t<float, py::array::c_style | py::array::forcecast> x, bool stages) {
  if (x.ndim() != 4 || x.shape(1) != m.net->config().in_chans) {
    throw Error("forward: expected float N x " + std::to_string(m.net->config().in_chans) + " x H x W");
  }
  const at::Tensor input =
      at::from_blob(const_cast<float*>(x.data()), {x.shape(0), x.shape(1), x.shape(2), x.shape(3)}).clone();
  std::vector<at::Tensor> features;
  at::Tensor out;
  {
    py::gil_scoped_release release;
    at::NoGradGuard no_grad;
    m.net->eval();
    features = m.net->forward_stages(input);
    out = m.net->forward_head(features[3], features[2]);
  }
  if (!stages) return tensor_to_numpy(out);
  py::list maps;
  for (const auto& f : features) maps.append(tensor_to_numpy(f));
  return py::make_tuple(tensor_to_numpy(out), maps);
}

}  // namespace

PYBIND11_MODULE(_libgaze, m) {
  m.doc() = "libgaze native core (use the `libgaze` package)";
  py::register_exception<Error>(m, "Error", PyExc_RuntimeError);
  log_init("warn");
  keep_freed_memory();  // training steps reuse their buffers instead of faulting them in again

  py::class_<Config>(m, "Config", "A resolved libgaze configuration (YAML with typed defaults).")
      .def_static("load", &load_config, py::arg("path"), py::arg("overrides") = std::vector<std::string>{},
                  "Read a YAML config (following `extends`), apply key.sub=value overrides, validate.")
      .def_static("default", &default_config, py::arg("overrides") = std::vector<std::string>{},
                  "The defaults, with key.sub=value overrides.")
      .def("dump", &dump_config, "The resolved config as YAML (every key, help as comments).")
      .def(
          "override",
          [](const Config& c, const std::vector<std::string>& o) {
            Config copy = c;
            for (const auto& a : o) apply_override(copy, a);
            validate_config(copy);
            return copy;
          },
          py::arg("overrides"), "A copy with key.sub=value overrides applied.")
      .def("origin", &config_origin, py::arg("key"),
           "Where a key's value came from (file:line:col, command line, default).")
      .def_static("keys", &config_keys, "Every valid key as a dotted path.");

  py::class_<Dataset, std::shared_ptr<Dataset>>(m, "Dataset", "An indexed dataset of labelled grey eye images.")
      .def("__len__", &Dataset::size)
      .def(
          "__getitem__",
          [](const Dataset& d, int64_t i) {
            if (i < 0) i += d.size();
            if (i < 0 || i >= d.size()) throw py::index_error("dataset index out of range");
            Sample s;
            {
              py::gil_scoped_release release;
              s = d.get(i);
            }
            return sample_dict(std::move(s));
          },
          "A dict: image (uint8 H x W), gaze (float32[3]), participant, key, timestamp_us, blink, head (float32[2]: "
          "pitch, yaw in radians; zero where the source has none).")
      .def(
          "labels",
          [](const Dataset& d) {
            std::vector<float> gaze(size_t(d.size()) * 3), head(size_t(d.size()) * 2);
            std::vector<int64_t> participants(size_t(d.size()));
            std::vector<uint8_t> blink(size_t(d.size()));
            py::list keys;
            for (int64_t i = 0; i < d.size(); ++i) {
              const SampleLabel& l = d.label(i);
              std::copy(l.gaze.begin(), l.gaze.end(), gaze.begin() + 3 * i);
              std::copy(l.head.begin(), l.head.end(), head.begin() + 2 * i);
              participants[size_t(i)] = l.participant;
              blink[size_t(i)] = l.blink;
              keys.append(l.key);
            }
            py::dict out;
            out["gaze"] = to_numpy(std::move(gaze), {d.size(), 3});
            out["head"] = to_numpy(std::move(head), {d.size(), 2});
            out["participant"] = to_numpy(std::move(participants), {d.size()});
            out["blink"] = to_numpy(std::move(blink), {d.size()}).attr("astype")("bool");
            out["key"] = keys;
            return out;
          },
          "All labels at once (no image decoding) as numpy arrays.")
      .def("describe", &Dataset::describe)
      .def_property_readonly("skipped", [](const Dataset& d) { return d.skipped().count; });

  m.def(
      "open_dataset", [](const Config& c) { return std::shared_ptr<Dataset>(open_dataset(c.data)); }, py::arg("config"),
      "Open config.data.source (openeds:, aea:, mpiigaze:, folder:, pack: or a detected path).");

  py::class_<PyModel>(m, "Model", "A DFT Gaze student or ConvNeXt V2 teacher.")
      .def_static(
          "build",
          [](const Config& c) {
            return PyModel{make_gaze_net(c.model, uint64_t(c.run.seed)), c};
          },
          py::arg("config"), "A freshly initialised model from config.model.")
      .def_static(
          "load",
          [](const std::string& path, const Config& c) {
            PyModel m{load_model(path), c};
            m.config.model = m.net->config();
            return m;
          },
          py::arg("path"), py::arg("config"), "A model from a libgaze checkpoint (its stored architecture).")
      .def(
          "apply_user_adapter", [](PyModel& m, const std::string& path) { apply_user_adapter(m.net, path); },
          py::arg("path"), "Load a user's personalised adapters (made for this base model).")
      .def("predict_numpy", &predict, py::arg("images"),
           "uint8 images (H x W or N x H x W) -> (unit gaze N x 3, log-scale N).")
      .def(
          "input_numpy",
          [](PyModel& m, const Images& images) { return tensor_to_numpy(network_input(m, images, "input")); },
          py::arg("images"),
          "uint8 images (H x W or N x H x W) -> float N x 3 x H x W: what predict feeds the network (resampled to "
          "the config's input size, normalised), forward's input.")
      .def("forward_numpy", &forward, py::arg("x"), py::arg("stages") = false,
           "float N x C x H x W (already normalised) -> head output N x 4 [, list of stage feature maps].")
      .def(
          "param_count",
          [](PyModel& m, const std::string& group) { return count_parameters(*m.net, parse_param_group(group)); },
          py::arg("group") = "all",
          "Parameters in a group: all, backbone, adapters, last_stage_adapters, head, stem_stage1.")
      .def("tunable_count", [](PyModel& m) { return count_tunable_parameters(*m.net); })
      .def(
          "macs",
          [](PyModel& m) {
            return compute_model_stats(m.net->config(), m.config.data.input_size[0], m.config.data.input_size[1]).macs;
          },
          "Multiply-accumulates per frame at config.data.input_size.")
      .def(
          "save", [](PyModel& m, const std::string& path) { save_model(path, m.net, m.config, "python", 0); },
          py::arg("path"))
      .def(
          "export_onnx", [](PyModel& m, const std::string& path) { export_onnx(m.net, path, "python"); },
          py::arg("path"),
          "The float model as ONNX (opset 17; input 'image' N x C x H x W normalised, output 'output' N x 4), "
          "checked by ONNX; gaze export --format onnx.")
      .def_property_readonly("arch", [](PyModel& m) { return m.net->config().arch; });

  m.def(
      "train",
      [](const std::string& stage, Config c, bool resume) {
        complete_stage_config(stage, c);  // as gaze train and gaze run do
        TrainResult r;
        {
          py::gil_scoped_release release;
          auto s = make_stage(stage, c);
          r = run_training(c, *s, resume);
        }
        py::dict out;
        out["run_dir"] = r.run_dir;
        out["model"] = r.model_path;
        out["seconds"] = r.seconds;
        py::dict metrics;
        for (const auto& [k, v] : r.last_metrics) metrics[py::str(k)] = v;
        out["metrics"] = metrics;
        return out;
      },
      py::arg("stage"), py::arg("config"), py::arg("resume") = false,
      "Run a training stage (teacher-mae, distill, adapters); progress goes to stderr.");

  m.def(
      "evaluate",
      [](const std::string& checkpoint, const Config& c) {
        return json_call([&] {
          GazeNet net = load_model(checkpoint);
          const auto data = open_dataset(c.data);
          return eval_json(evaluate(net, *data, c));
        });
      },
      py::arg("checkpoint"), py::arg("config"), "Evaluation as a dict (the `gaze eval --json` object).");

  m.def(
      "export_kernel",
      [](const std::string& checkpoint, const Config& c, const std::string& out_dir, const std::string& merge_user,
         const std::vector<std::string>& users) {
        return json_call([&] { return export_kernel(c, {checkpoint, out_dir, merge_user, users}).json(); });
      },
      py::arg("checkpoint"), py::arg("config"), py::arg("out_dir"), py::arg("merge_user"), py::arg("users"),
      "gaze export's report as a dict.");

  m.def(
      "kernel_personalize",
      [](const std::string& kernel_dir, py::array_t<uint8_t, py::array::c_style | py::array::forcecast> eyes,
         py::array_t<float, py::array::c_style | py::array::forcecast> gazes, const std::string& blob_path,
         int64_t steps, int64_t seed, int64_t train_head) {
        if (eyes.ndim() != 3) throw Error("kernel_personalize: expected uint8 eye images N x H x W");
        if (gazes.ndim() != 2 || gazes.shape(1) != 3 || gazes.shape(0) != eyes.shape(0))
          throw Error("kernel_personalize: expected gaze vectors N x 3, one per eye image");
        const int32_t h = int32_t(eyes.shape(1)), w = int32_t(eyes.shape(2));
        const size_t plane = size_t(h) * size_t(w);
        std::vector<Frame> frames;
        std::vector<std::array<float, 3>> g;
        for (py::ssize_t i = 0; i < eyes.shape(0); ++i) {
          frames.emplace_back(eyes.data() + size_t(i) * plane, eyes.data() + size_t(i + 1) * plane);
          g.push_back({gazes.at(i, 0), gazes.at(i, 1), gazes.at(i, 2)});
        }
        KernelTuneOptions options;
        if (steps >= 0) options.steps = steps;
        if (seed >= 0) options.seed = uint64_t(seed);
        if (train_head >= 0) options.train_head = train_head != 0;
        return json_call([&] { return personalize_in_kernel(kernel_dir, frames, h, w, g, blob_path, options); });
      },
      py::arg("kernel_dir"), py::arg("eyes"), py::arg("gazes"), py::arg("blob_path"), py::arg("steps"), py::arg("seed"),
      py::arg("train_head"), "dftgaze_personalize in the kernel folder's own tool; the tool's report as a dict.");

  m.def(
      "bench",
      [](const std::string& checkpoint, const Config& c, const std::string& kernel_dir, int64_t frames, int64_t threads,
         const std::string& model) {
        return json_call([&] { return bench_kernel(c, checkpoint, kernel_dir, frames, threads, model).json; });
      },
      py::arg("checkpoint"), py::arg("config"), py::arg("kernel_dir"), py::arg("frames"), py::arg("threads"),
      py::arg("model"), "gaze bench's numbers as a dict (model \"pi4\": with the Pi 4 cycle model).");

  m.def(
      "personalize",
      [](const std::string& checkpoint, const Config& c, const std::string& out_dir) {
        PersonalizeResult r;
        {
          py::gil_scoped_release release;
          GazeNet base = load_model(checkpoint);
          const auto users = open_dataset(c.data);
          const auto replay = open_replay_dataset(c);
          r = personalize(base, *users, replay.get(), c, out_dir);
        }
        py::dict out;
        py::list users;
        for (const auto& u : r.users) {
          py::dict d;
          d["participant"] = u.participant;
          d["before_deg"] = u.before_deg;
          d["after_deg"] = u.after_deg;
          d["adapter_file"] = u.adapter_file;
          d["k_curve"] = u.k_curve;
          d["calibration"] = u.calibration;  // the k shots' indices in the dataset
          d["calibrate_seconds"] = u.calibrate_seconds;
          users.append(d);
        }
        out["users"] = users;
        out["k_curve"] = r.k_curve;
        out["before_deg"] = r.before_deg;
        out["after_deg"] = r.after_deg;
        out["seconds_per_user"] = r.seconds_per_user;
        out["calibrate_seconds_per_user"] = r.calibrate_seconds_per_user;
        return out;
      },
      py::arg("checkpoint"), py::arg("config"), py::arg("out_dir"),
      "Per-user adapters; returns errors before/after and vs k.");

  m.def(
      "synth",
      [](const Config& c) {
        py::gil_scoped_release release;
        const SynthReport r = write_synthetic_datasets(c.synth, uint64_t(c.run.seed), c.run.threads);
        return std::make_tuple(r.openeds_root, r.aea_root, r.seconds);
      },
      py::arg("config"), "Render the synthetic datasets; returns (openeds_root, aea_root, seconds).");

  m.def(
      "angular_error",
      [](py::array_t<double, py::array::c_style | py::array::forcecast> a,
         py::array_t<double, py::array::c_style | py::array::forcecast> b) {
        if (a.ndim() != 2 || b.ndim() != 2 || a.shape(1) != 3 || b.shape(1) != 3 || a.shape(0) != b.shape(0)) {
          throw Error("angular_error: expected two N x 3 arrays");
        }
        std::vector<double> out(size_t(a.shape(0)));
        for (py::ssize_t i = 0; i < a.shape(0); ++i) {
          const double* p = a.data() + 3 * i;
          const double* q = b.data() + 3 * i;
          out[size_t(i)] = angular_error_deg({p[0], p[1], p[2]}, {q[0], q[1], q[2]});
        }
        return to_numpy(std::move(out), {a.shape(0)});
      },
      py::arg("a"), py::arg("b"), "Angular error in degrees (atan2 form, double) between rows of two N x 3 arrays.");
}
