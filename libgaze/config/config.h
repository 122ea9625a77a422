// The experiment configuration: typed sections with defaults, read from YAML.
//
// A section is a struct whose `visit(v)` names each field once: v("key", member, "help").
// That one list drives reading (unknown keys rejected with the nearest valid key, type errors
// reported as file:line:column), `key.sub=value` overrides, dumping the resolved config (with
// the help text as comments) and the list of valid keys. Add a field = add one line.
//
// A config file may start with `extends: other.yaml` (path relative to the file; a list is
// allowed): the named files are read first, then this file's keys override theirs.
//
// load_config() also validates and resolves presets (e.g. model.arch=student fills depths and
// dims), so every value in a Config is final; dump_config() of it is the resolved config that
// is written into each run directory.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gaze {

struct AdapterConfig {
  bool enabled = true;
  int64_t reduction = 4;
  double slope = 0.01;

  template <class V>
  void visit(V& v) {
    v("enabled", enabled, "add a bottleneck adapter to every block (identity at init)");
    v("reduction", reduction, "bottleneck width = block width / reduction");
    v("slope", slope, "LeakyReLU negative slope inside the adapter");
  }
};

struct HeadConfig {
  bool uncertainty = true;
  std::vector<int64_t> grid = {1, 1};
  int64_t keypoints = 0;

  template <class V>
  void visit(V& v) {
    v("uncertainty", uncertainty,
      "train the 4th output as a Laplace log-scale (our addition; with train.gaze_loss=l1 by its own NLL on the "
      "detached gaze residual); false: the 4th output is untrained and not scored");
    v("grid", grid,
      "[rows, cols] cells the last stage's map is average-pooled to, each LayerNorm'd, all read by the Linear: "
      "[1, 1] is the paper's global pool; more cells keep where features sit (our addition; a 96x128 input gives "
      "a 3x4 map). The adapters stage builds a fresh head to this grid");
    v("keypoints", keypoints,
      "key points the head also reads (our addition): a 1x1 conv makes this many heat maps of the third stage's map "
      "(stride 16), a spatial softmax each, and their expected (x, y), less the points' centroid, join the Linear's "
      "input, so the head can read where the pupil and the glints sit against each other finer than a cell; 0 = none "
      "(the paper's head), else 2..64; the adapters stage builds them fresh with the grid; not exported");
  }
};

struct ModelConfig {
  std::string arch = "student";
  std::vector<int64_t> depths;  // empty: taken from `arch`
  std::vector<int64_t> dims;    // empty: taken from `arch`
  int64_t in_chans = 3;
  double drop_path = 0.0;
  double ln_eps = 1e-6;
  AdapterConfig adapter;
  HeadConfig head;

  template <class V>
  void visit(V& v) {
    v("arch", arch, "teacher (ConvNeXt V2-Atto) | student (DFT Gaze) | custom | gazenet | rtgene | gazetr_hybrid");
    v("depths", depths, "blocks per stage; empty = the arch preset");
    v("dims", dims, "channels per stage; empty = the arch preset");
    v("in_chans", in_chans, "input channels (grey eye images are replicated to 3)");
    v("drop_path", drop_path, "stochastic depth rate, linearly increasing over blocks");
    v("ln_eps", ln_eps, "LayerNorm epsilon");
    v("adapter", adapter, "gaze adapters inside every block");
    v("head", head, "gaze head: pool (model.head.grid) -> LayerNorm (+ model.head.keypoints) -> Linear(4)");
  }
};

// How strongly training images are augmented (train.augment turns it on); each image draws its
// own values uniformly within +-these bounds (datasets/preprocess.h).
struct AugmentConfig {
  double shift = 0.04;
  double scale = 0.0;
  double brightness = 0.1;
  double contrast = 0.15;
  double gamma = 0.15;
  double noise = 2.0;
  double focal = 0;
  std::vector<double> tilt = {0, 0};
  bool warp = false;
  double roll = 0;

  template <class V>
  void visit(V& v) {
    v("shift", shift, "move the crop window by up to this fraction of its size, each axis");
    v("focal", focal,
      "the camera's focal length in image widths (the renderer's: 0.733): the shift then also turns the gaze label by "
      "the angle it moves the eye in the view, as an eye sitting elsewhere in the frame is seen; 0 = the label stays; "
      "-1 = auto, in a gaze run stage's set only: the renderer's for the OpenEDS / AEA data the pipeline renders, "
      "0 for data it is given (its camera unknown; warp and roll off with it), for MPII and for eye pairs");
    v("tilt", tilt,
      "[yaw, pitch] of the camera against the label frame, degrees, as synth.camera_tilt_deg: the shift's turn is "
      "the camera's, so the label turns in the camera's frame (unset, on data gaze run renders: the renderer's)");
    v("warp", warp,
      "with focal: the shift as the camera turn it stands for, the image resampled through that rotation (a "
      "homography about the image centre) instead of translated, so an eye elsewhere in the frame is seen as that "
      "camera would see it");
    v("roll", roll,
      "with warp: turn the camera about its view axis by up to +- this many degrees too, the image and the gaze "
      "label with it, as a headset sitting rolled on the face (0 = off)");
    v("scale", scale, "zoom: scale the crop window about its centre by 1 +- this (the eye nearer or farther; 0 = off)");
    v("brightness", brightness, "add up to +- this fraction of full scale");
    v("contrast", contrast, "scale contrast by 1 +- this");
    v("gamma", gamma, "gamma exp(+- this)");
    v("noise", noise, "Gaussian noise, standard deviation drawn up to this (grey levels)");
  }
};

struct TrainConfig {
  int64_t steps = 300;
  int64_t batch_size = 32;
  double lr = 1e-3;
  double min_lr = 1e-5;
  double weight_decay = 0.05;
  int64_t warmup_steps = 20;
  double clip_grad = 1.0;
  double ema = 0;
  int64_t checkpoint_every = 100;
  int64_t log_every = 10;
  std::string init;
  std::string teacher;
  bool balanced = true;
  int64_t clusters = 15;
  bool augment = true;
  AugmentConfig augmentation;
  bool flip = false;
  std::string gaze_loss = "l1";
  std::string head_init = "face_data";
  std::string tune = "adapters";
  bool person_offsets = false;

  template <class V>
  void visit(V& v) {
    v("steps", steps, "optimiser steps");
    v("batch_size", batch_size, "images per step");
    v("lr", lr, "peak AdamW learning rate (after warm-up)");
    v("min_lr", min_lr, "learning rate at the end of the cosine decay");
    v("weight_decay", weight_decay, "AdamW decoupled weight decay");
    v("warmup_steps", warmup_steps, "linear warm-up steps");
    v("clip_grad", clip_grad, "clip the global gradient norm to this; 0 = off");
    v("ema", ema,
      "decay of the trained weights' moving average, which model.h5 then holds (Polyak averaging, warmed up as "
      "min(ema, (1+step)/(10+step))); 0 = off: the last step's weights");
    v("checkpoint_every", checkpoint_every, "save a resumable checkpoint every N steps (and at the end)");
    v("log_every", log_every, "write metrics every N steps");
    v("init", init, "checkpoint to start the model from (empty: fresh initialisation)");
    v("teacher", teacher, "distill: the trained teacher checkpoint");
    v("balanced", balanced, "adapters: sample K-means gaze clusters uniformly");
    v("clusters", clusters, "adapters: K of the K-means balancing");
    v("augment", augment, "photometric and geometric augmentation (train.augmentation says how much)");
    v("augmentation", augmentation, "augmentation strengths");
    v("flip", flip, "random horizontal flips (gaze x mirrored)");
    v("gaze_loss", gaze_loss,
      "adapters and personalisation: l1 (the paper's) | laplace_nll (the 4th output's scale re-weights each "
      "sample's gaze loss; needs model.head.uncertainty)");
    v("head_init", head_init,
      "adapters from a checkpoint whose head never saw gaze (teacher-mae, distill, imported): face_data (turn the "
      "random head round if its mean prediction points away from the mean training gaze) | mean_gaze (bias it "
      "towards that direction) | random (as built)");
    v("tune", tune,
      "adapters stage, what learns: adapters (all adapters + head, the backbone frozen: the paper's protocol) | all "
      "(every weight: the full fine-tuning ceiling)");
    v("person_offsets", person_offsets,
      "adapters stage: learn one (yaw, pitch) turn per training participant and eye (the eye a key's /L /R or "
      "/left /right names), centred over them and applied to their predictions in training only, so each person's "
      "own offset (kappa, which no image shows) is not learned as their look (gaze decomposition, Chen & Shi 2020); "
      "the model alone is evaluated and saved");
  }
};

struct MaeConfig {
  double mask_ratio = 0.6;
  int64_t patch = 32;
  bool norm_pix_loss = true;
  int64_t decoder_dim = 128;
  double kd_weight = 0.5;

  template <class V>
  void visit(V& v) {
    v("mask_ratio", mask_ratio, "fraction of patches hidden from the encoder");
    v("patch", patch, "mask patch size in input pixels (a multiple of 32)");
    v("norm_pix_loss", norm_pix_loss, "normalise each target patch by its own mean and std");
    v("decoder_dim", decoder_dim, "width of the FCMAE decoder (1x1 proj -> ConvNeXt V2 block -> 1x1 pred)");
    v("kd_weight", kd_weight, "distill: gamma, the weight of the stage-3/4 feature loss");
  }
};

struct PersonalizeConfig {
  int64_t k = 5;
  std::vector<int64_t> k_curve = {0, 1, 3, 5, 10};
  int64_t steps = 60;
  double lr = 3e-3;
  int64_t batch_size = 32;
  int64_t replay = 256;
  double replay_fraction = 0.5;
  bool train_head = false;
  std::string replay_source;
  double gap_ms = 100;
  double calibration_window_ms = 0;

  template <class V>
  void visit(V& v) {
    v("k", k, "labelled calibration images per participant");
    v("k_curve", k_curve, "also report the error after personalising with each of these k");
    v("steps", steps, "optimiser steps per participant");
    v("lr", lr, "AdamW learning rate");
    v("batch_size", batch_size, "images per step (calibration + replay)");
    v("replay", replay, "size of the K-means-balanced replay subset of the generalised set");
    v("replay_fraction", replay_fraction, "fraction of each batch drawn from the replay subset");
    v("train_head", train_head, "also tune the head Linear (default: last-stage adapters only)");
    v("replay_source", replay_source, "generalised training set for replay (empty: data.source, train split)");
    v("gap_ms", gap_ms,
      "when a participant is a sequence or recording (no person ids): calibrate on its first frames and evaluate "
      "from this long after them");
    v("calibration_window_ms", calibration_window_ms,
      "when a participant is a sequence or recording: 0 = calibrate on its first k frames; > 0 = on the k frames of "
      "its first this-many ms whose gaze labels lie farthest apart (a calibration that shows targets across the "
      "field), evaluating from gap_ms after the window");
  }
};

// One stage of `gaze run`: its config file and the overrides applied on top of it.
struct StageRef {
  std::string config;            // relative paths are taken from the file that names them
  std::vector<std::string> set;  // "key.sub=value", applied last

  template <class V>
  void visit(V& v) {
    v("config", config, "the stage's config file (configs/stages/*.yaml); empty = defaults only");
    v("set", set, "overrides for this stage only, e.g. [train.steps=300]");
  }
};

// The stages `gaze run` composes. Each stage's config is built as: defaults <- its config file
// <- every key the pipeline's own file or command line set outside pipeline.* <- its `set`
// <- the wiring (run directory, data source, init and teacher checkpoints).
struct PipelineStages {
  StageRef teacher_mae, teacher_adapters, distill, student_adapters, personalize, baseline, student_full;

  template <class V>
  void visit(V& v) {
    v("teacher_mae", teacher_mae, "FCMAE pretraining of the teacher on every dataset's train split");
    v("teacher_adapters", teacher_adapters, "the teacher's gaze adapters + head, per dataset");
    v("distill", distill, "MAE + KD distillation of the student from the pretrained teacher");
    v("student_adapters", student_adapters, "the student's gaze adapters + head, per dataset");
    v("personalize", personalize, "evaluation and k-shot personalisation of both models, per dataset");
    v("baseline", baseline,
      "each of pipeline.baselines per dataset: training, evaluation and k-shot fine-tuning (personalize.*)");
    v("student_full", student_full,
      "with pipeline.full_finetune: the student with every weight trained (train.tune=all), per dataset; empty "
      "config = student_adapters' file and set, then this set");
  }
};

// One of our own rows beside the paper's (pipeline.variants): the adapters stage of the teacher,
// the student or both trained again with `set` applied after the stage's own set (then
// `teacher_set` / `student_set` for that model's stage alone), scored, and
// checked like the paper's pair (with both models the variant's student is checked against the
// variant's teacher, so a change to both compares like with like).
struct PipelineVariant {
  std::string name;
  std::string title;
  std::vector<std::string> models = {"teacher", "student"};
  std::vector<std::string> set;
  std::vector<std::string> teacher_set;
  std::vector<std::string> student_set;

  template <class V>
  void visit(V& v) {
    v("name", name, "names its rows (<model>_<name>) and runs (<model>_<name>_<dataset>): a-z, 0-9, _");
    v("title", title, "what the tables add to the model's title, e.g. 'a 3x4 grid head (ours)'; empty = the name");
    v("models", models, "which adapters stages it trains again: teacher, student");
    v("set", set,
      "overrides after each stage's own set, e.g. [\"model.head.grid=[3,4]\"]; 'openeds:key=value' for one dataset");
    v("teacher_set", teacher_set, "overrides for the teacher's stage alone, after set");
    v("student_set", student_set,
      "overrides for the student's stage alone, after set, e.g. [train.augmentation.shift=0.08]");
  }

  // Whether the variant trains `model` ("teacher" or "student") again.
  bool trains(const std::string& model) const {
    for (const std::string& m : models)
      if (m == model) return true;
    return false;
  }
  // The overrides for `model`'s stage alone: teacher_set or student_set.
  const std::vector<std::string>& own_set(const std::string& model) const {
    return model == "teacher" ? teacher_set : student_set;
  }
};

struct PipelineConfig {
  std::vector<std::string> datasets = {"openeds", "aea"};
  std::vector<std::string> baselines;
  std::string openeds;
  std::string aea;
  std::string mpiigaze;
  std::string mpiifacegaze;
  std::string import_teacher;
  bool import_allow_partial = false;
  std::string teacher_source = "eyes";
  std::string distill_source = "eyes";
  std::string images;
  std::string mpii_protocol = "fold";
  std::vector<int64_t> seeds;
  bool full_finetune = false;
  std::vector<PipelineVariant> variants;
  PipelineStages stages;

  template <class V>
  void visit(V& v) {
    v("datasets", datasets, "which datasets the tables cover: openeds, aea, mpiigaze, mpiifacegaze");
    v("baselines", baselines,
      "published networks trained beside DFT Gaze (Tables 1, 2): gazenet, rtgene, gazetr_hybrid");
    v("openeds", openeds, "a real OpenEDS2020 root; empty = render the synthetic one (synth.*)");
    v("aea", aea, "a real AEA root (folder of recordings); empty = the synthetic one");
    v("mpiigaze", mpiigaze, "a real MPIIGaze root (holding Data/Normalized); empty = the synthetic one");
    v("mpiifacegaze", mpiifacegaze, "a real MPIIFaceGaze root (pXX folders); empty = the synthetic one");
    v("import_teacher", import_teacher,
      "official ConvNeXt V2-Atto .pt (FCMAE or fine-tuned): the teacher is these weights, teacher_mae is skipped");
    v("import_allow_partial", import_allow_partial,
      "accept an import that leaves encoder tensors (not only adapters, norm, head) at random initialisation");
    v("teacher_source", teacher_source,
      "teacher_mae's data: eyes (every dataset's train split) | images (pipeline.images, RGB)");
    v("distill_source", distill_source,
      "distill's data: eyes | images (pipeline.images, RGB; the paper distils on ImageNet-1K)");
    v("images", images,
      "an ImageNet-style folder (e.g. ImageNet-1K train); empty = render natural-image stand-ins (synth.images)");
    v("mpii_protocol", mpii_protocol,
      "MPIIGaze / MPIIFaceGaze: fold (one leave-people-out fold, people split 8:1:1) | leave_one_out (the "
      "paper's: every person held out once, adapters and baselines trained per fold, scores averaged over people)");
    v("seeds", seeds,
      "train and score every stage once per seed (data rendered and split with run.seed); each cell becomes the "
      "mean over seeds +- their standard deviation, and a check that passes on some seeds only is flagged; empty "
      "= run.seed alone");
    v("full_finetune", full_finetune,
      "also train the distilled student with every weight trainable (pipeline.stages.student_full) and report it "
      "beside the paper's rows: the ceiling the frozen-backbone protocol leaves");
    v("variants", variants,
      "our own rows beside the paper's, each {name, title, models, set, teacher_set, student_set}: the teacher's "
      "and/or the student's adapters trained again with `set` and then the model's own (e.g. a grid head), reported "
      "and checked beside the paper's pair");
    v("stages", stages, "the stages the run composes, each a config file + overrides");
  }
};

struct RunConfig {
  std::string name = "run";
  std::string out_dir = "runs";
  int64_t seed = 0;
  int64_t threads = 0;
  int64_t dist_timeout_s = 300;

  template <class V>
  void visit(V& v) {
    v("name", name, "run name; the run directory is out_dir/name");
    v("out_dir", out_dir, "parent folder of run directories");
    v("seed", seed, "seed for every random number generator");
    v("threads", threads, "intra-op threads per process; 0 = all cores (divided among --nproc workers)");
    v("dist_timeout_s", dist_timeout_s,
      "data-parallel runs: seconds to wait for the other workers (rendezvous, each all-reduce) before failing");
  }
};

struct DataConfig {
  std::string source;
  std::string split = "train";
  std::string participants_file;
  std::vector<int64_t> openeds_size = {400, 640};
  std::string eye = "both";
  bool mirror_right = true;
  int64_t tolerance_us = 0;
  bool skip_bad = false;
  bool colour = false;
  int64_t hold_out = -1;
  int64_t train_people = -1;
  std::string mpii_subset = "evaluation";
  std::vector<int64_t> input_size = {96, 128};
  int64_t workers = 2;
  int64_t prefetch = 64;
  int64_t cache_mib = 1024;
  int64_t max_image_pixels = int64_t(1) << 26;
  int64_t max_record_mib = 64;

  template <class V>
  void visit(V& v) {
    v("source", source,
      "kind:path (openeds:, aea:, mpiigaze:, mpiifacegaze:, folder:, pack:) or a path whose kind is detected");
    v("split", split, "OpenEDS split or pack split: train, validation, test (all: every split)");
    v("participants_file", participants_file, "OpenEDS: 'seq,participant' CSV (default: one per sequence)");
    v("openeds_size", openeds_size, "OpenEDS: every image must be [H, W]; [0, 0] accepts any size");
    v("eye", eye,
      "AEA: pair (whole frame), left, right or both (two samples per frame); MPIIGaze: the same (pair: both "
      "patches side by side); MPIIFaceGaze: pair = the two eyes cropped from the face (else the face)");
    v("mirror_right", mirror_right, "AEA, MPIIGaze: mirror right-eye images (and their gaze x) to look like left eyes");
    v("tolerance_us", tolerance_us, "AEA: match a frame to the nearest gaze row within this many µs");
    v("skip_bad", skip_bad, "skip and count bad items instead of stopping at the first");
    v("hold_out", hold_out,
      "leave-one-person-out (MPII sources: the pXX number; packs: the participant id, the pack's own splits "
      "ignored): split train = everyone else, validation/test = that person; -1: none");
    v("train_people", train_people,
      "packs: the train split keeps only its first N people (lowest ids of the pack's participant unit: "
      "recordings on AEA), validation and test unchanged: a learning curve over how many people training sees; "
      "image folders have none and ignore it; -1 = all");
    v("mpii_subset", mpii_subset,
      "MPIIGaze: evaluation (the standard 3,000 listed samples per person) or all (every normalised sample)");
    v("colour", colour,
      "image folders, MPIIFaceGaze: decode RGB and normalise each channel (natural images, faces); false: grey like "
      "eyes");
    v("input_size", input_size, "network input [H, W]; images are resampled to it");
    v("workers", workers, "decode/augment threads");
    v("prefetch", prefetch, "items decoded ahead of the consumer");
    v("cache_mib", cache_mib,
      "training: keep up to this many MiB of decoded images in memory, so later epochs skip decoding (0: off)");
    v("max_image_pixels", max_image_pixels,
      "refuse images whose header declares more pixels, before decoding (PNG, JPEG, VRS frames)");
    v("max_record_mib", max_record_mib, "refuse VRS records that declare more uncompressed MiB, before decompressing");
  }
};

struct SynthConfig {
  std::string out_dir = "data/synth";
  std::vector<std::string> layouts = {"openeds", "aea"};
  int64_t participants = 10;
  double train_participants = 0.6;
  double validation_participants = 0.2;
  std::vector<int64_t> openeds_size = {400, 640};
  int64_t train_frames = 100;
  int64_t validation_frames = 55;
  int64_t test_frames = 50;
  std::vector<int64_t> aea_size = {240, 640};
  int64_t aea_frames = 100;
  double blink_rate = 0.3;
  double noise = 3.0;
  double slip_mm = 0.8;
  // Renderer variation beyond the demo's (issue 18's held-out conditions, experiments/conditions/).
  std::vector<double> camera_tilt_deg = {0, 0};
  std::vector<double> eye_distance_mm = {29, 35};
  double eye_offset_mm = 2.0;
  int64_t leds = 8;
  std::vector<double> exposure = {0.9, 1.1};
  double light_gradient = 0.0;
  double anatomy_spread = 1.0;
  std::vector<double> iris_brightness = {70, 140};
  int64_t jpeg_quality = 92;
  int64_t images = 240;
  int64_t image_classes = 8;
  std::vector<int64_t> image_size = {192, 256};
  int64_t mpii_images = 60;
  int64_t mpii_evaluation = 40;
  std::vector<int64_t> mpii_frame = {360, 640};

  template <class V>
  void visit(V& v) {
    v("out_dir", out_dir, "where the rendered datasets are written");
    v("layouts", layouts,
      "which layouts to write: openeds, aea, mpiigaze, mpiifacegaze, images (RGB natural-image stand-ins in ImageNet's "
      "class-folder "
      "layout)");
    v("participants", participants, "number of synthetic people (anatomy, kappa, headset fit)");
    v("train_participants", train_participants, "fraction of people in the OpenEDS train split");
    v("validation_participants", validation_participants,
      "fraction in validation; the rest form the test (personalisation) split");
    v("openeds_size", openeds_size, "OpenEDS frame size [H, W] (the real one is 400x640)");
    v("train_frames", train_frames, "frames per train sequence (100 Hz)");
    v("validation_frames", validation_frames, "frames per validation sequence");
    v("test_frames", test_frames, "images per test sequence (5 more label rows are written)");
    v("aea_size", aea_size, "AEA eye frame [H, W]: both eyes side by side (Aria: 240x640)");
    v("aea_frames", aea_frames, "eye frames per AEA recording (10 Hz), one recording per person");
    v("blink_rate", blink_rate, "blinks per second");
    v("noise", noise, "sensor noise standard deviation, grey levels");
    v("slip_mm", slip_mm, "headset slip standard deviation, mm");
    v("camera_tilt_deg", camera_tilt_deg,
      "[yaw, pitch] of the eye camera's axis against the wearer's straight ahead, degrees (pitch > 0: the camera "
      "sits below the eye looking up; yaw > 0: beside it, straight ahead appearing to the image's right)");
    v("eye_distance_mm", eye_distance_mm, "[min, max] camera-to-eyeball-centre distance, drawn per person, mm");
    v("eye_offset_mm", eye_offset_mm, "headset fit: the eye sits up to this far off the camera axis, per person, mm");
    v("leds", leds, "infrared LEDs in the ring around the camera (one corneal glint each)");
    v("exposure", exposure, "[min, max] exposure gain, drawn per frame");
    v("light_gradient", light_gradient,
      "ambient light falling off across the frame: up to this relative change edge to centre, direction and strength "
      "drawn per sequence (0 = even light)");
    v("anatomy_spread", anatomy_spread,
      "scales every anatomy draw's spread around its mean (eyeball, cornea, kappa, pupil, lids, skin, sclera)");
    v("iris_brightness", iris_brightness, "[min, max] iris grey level under IR, drawn per person");
    v("jpeg_quality", jpeg_quality, "JPEG quality of AEA eye frames");
    v("images", images, "images layout: how many natural-image stand-ins");
    v("mpii_images", mpii_images, "MPII layouts: images per person (one pXX per rendered person)");
    v("mpii_frame", mpii_frame, "MPIIFaceGaze webcam frame [H, W] (the real one is 720x1280)");
    v("mpii_evaluation", mpii_evaluation,
      "MPIIGaze: samples per person in the evaluation list (half left, half right eyes)");
    v("image_classes", image_classes, "images layout: class folders (palette and shape statistics per class)");
    v("image_size", image_size, "images layout: [H, W]");
  }
};

struct ExportConfig {
  std::vector<int64_t> input_size;  // empty: data.input_size
  int64_t calibration_frames = 256;
  std::string observer = "minmax";
  double percentile = 99.99;
  int64_t eval_frames = 200;
  int64_t arena_budget_kb = 1024;
  std::string int8_hidden = "auto";
  std::string int8 = "auto";
  double int8_budget_deg = 0.05;
  double int8_max_deg = 0.08;
  int64_t int8_frames = 32;
  int64_t replay_frames = 128;
  std::string weight_rounding = "gptq";

  template <class V>
  void visit(V& v) {
    v("input_size", input_size, "kernel input [H, W] (multiples of 32); empty = data.input_size");
    v("calibration_frames", calibration_frames, "frames of data.source the activation ranges are measured on");
    v("observer", observer,
      "activation ranges: minmax | percentile (clips the outlier channels LayerNorm produces; minmax is far more "
      "accurate here)");
    v("percentile", percentile, "percentile observer: keep this percentage of values inside the range");
    v("eval_frames", eval_frames, "held-out frames for the float vs fixed-point comparison (0 = skip)");
    v("arena_budget_kb", arena_budget_kb,
      "keep each block's pw1/GELU output when the arena stays within this; else recompute it (slower, smaller)");
    v("int8_hidden", int8_hidden,
      "blocks keeping their pw1/GELU outputs as int8 (half the memory, one more rounding; needs an int8 pw2): auto "
      "(stages whose int16 outputs do not all fit arena_budget_kb) | none | all");
    v("int8", int8,
      "pointwise layers fed int8 activations (int8 x int8 products: twice the Pi 4's multiply rate): auto (chosen by "
      "a sensitivity pass within int8_budget_deg) | none (16x8 everywhere) | all");
    v("int8_budget_deg", int8_budget_deg,
      "auto: how much the int8 layers may add to the all-16-bit network's float vs fixed-point mean angle on the "
      "pass's frames (degrees)");
    v("int8_max_deg", int8_max_deg,
      "auto: and the int8 layers never take that angle above this (degrees; held-out frames measure a little more "
      "than the pass's own)");
    v("int8_frames", int8_frames,
      "auto: frames of data.source the sensitivity pass measures on (not the held-out ones)");
    v("replay_frames", replay_frames,
      "on-device personalisation (dftgaze_personalize): K-means-balanced frames of the training split packed into "
      "the kernel for replay (at most personalize.replay; 0 = no on-device personalisation)");
    v("weight_rounding", weight_rounding,
      "the backbone's int8 pointwise weights: gptq (rounding errors compensated through the calibration inputs' "
      "Gram matrices, as GPTQ does) | nearest");
  }
};

struct Config {
  ModelConfig model;
  DataConfig data;
  SynthConfig synth;
  TrainConfig train;
  MaeConfig mae;
  PersonalizeConfig personalize;
  PipelineConfig pipeline;
  RunConfig run;
  ExportConfig export_;

  template <class V>
  void visit(V& v) {
    v("model", model, "network architecture");
    v("data", data, "which dataset a command reads, and how");
    v("train", train, "optimisation of a training stage");
    v("mae", mae, "masked-image modelling (teacher pretraining, distillation)");
    v("personalize", personalize, "per-user adaptation of the last-stage adapters");
    v("pipeline", pipeline, "gaze run: the end-to-end job and its report");
    v("synth", synth, "the synthetic eye renderer (gaze synth)");
    v("run", run, "where and how a run is executed");
    v("export", export_, "gaze export / gaze bench: the fixed-point kernel");
  }

  // Where each key got its value ("cfg.yaml:3:9", "command line 'a.b=1'"); absent = default.
  std::map<std::string, std::string> origin;
};

// Reads `path` (following `extends`), applies `overrides` ("key.sub=value"), validates.
// Throws gaze::Error with file:line:column (or the override) on any problem.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Same from YAML text; `source` names it in error messages.
Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides = {});

// Defaults only (validated), plus overrides.
Config default_config(const std::vector<std::string>& overrides = {});

// Applies one "key.sub=value" override (value is YAML: 3, true, [1,2], text).
void apply_override(Config& config, const std::string& assignment);

// Fills presets and checks invariants; errors name the key and where its value came from.
// The published gaze networks libgaze trains as baselines (libgaze/models/baselines.h):
// gazenet, rtgene, gazetr_hybrid. model.arch takes them beside teacher / student / custom.
const std::vector<std::string>& baseline_archs();
bool is_baseline_arch(const std::string& arch);

void validate_config(Config& config);

// The resolved config as YAML, every key present, help text as comments.
std::string dump_config(const Config& config);

// 8 hex digits (CRC-32C) of dump_config: which settings produced a result, for reports.
std::string config_hash(const Config& config);

// All leaf keys as dotted paths ("model.adapter.slope", ...).
std::vector<std::string> config_keys();

// "cfg.yaml:3:9" for a key set from a file, "default" when never set.
std::string config_origin(const Config& config, const std::string& key);

// Copies into `to` every key `from` set explicitly (from a file or the command line), with its
// origin, except keys under one of `skip_prefixes` ("pipeline."). Does not validate `to`.
void copy_explicit_keys(const Config& from, Config& to, const std::vector<std::string>& skip_prefixes);

}  // namespace gaze
