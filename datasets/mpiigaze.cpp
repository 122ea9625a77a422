#include "datasets/mpiigaze.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "datasets/face_normalization.h"
#include "datasets/matfile.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"

namespace gaze {
namespace {

namespace fs = std::filesystem;
constexpr size_t kPatch = size_t(MpiiGazeDataset::kHeight) * MpiiGazeDataset::kWidth;

// One eye of one day file: N samples, images row-major per sample.
struct EyeData {
  std::vector<std::array<double, 3>> gaze, pose;
  std::vector<uint8_t> images;  // N x 36 x 60, row-major
};

struct DayFile {
  std::vector<std::string> names;          // file name of each sample, in file order
  std::map<std::string, size_t> index_of;  // file name -> sample index
  EyeData left, right;
};

// N x 3 doubles (MATLAB [N 3], column-major) as rows.
std::vector<std::array<double, 3>> rows3(const MatVar& var, size_t n) {
  var.expect_dims({n, 3});
  const std::vector<double> v = var.doubles();
  std::vector<std::array<double, 3>> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = {v[i], v[i + n], v[i + 2 * n]};
  return out;
}

EyeData read_eye(const MatVar& eye, size_t n) {
  EyeData d;
  d.gaze = rows3(eye.field("gaze"), n);
  d.pose = rows3(eye.field("pose"), n);
  const MatVar image = eye.field("image");
  // [N 36 60]; a one-sample day may be stored as [36 60].
  const size_t h = size_t(MpiiGazeDataset::kHeight), w = size_t(MpiiGazeDataset::kWidth);
  if (n == 1 && image.dims().size() == 2) {
    image.expect_dims({h, w});
  } else {
    image.expect_dims({n, h, w});
  }
  const std::vector<uint8_t> column_major = image.uint8s();
  d.images.resize(n * kPatch);
  for (size_t i = 0; i < n; ++i)
    for (size_t r = 0; r < h; ++r)
      for (size_t c = 0; c < w; ++c) d.images[(i * h + r) * w + c] = column_major[i + n * (r + h * c)];
  return d;
}

// MPII's (pitch, yaw) of sample i's head pose.
std::array<float, 2> head_of(const EyeData& eye, size_t i) {
  return head_pitch_yaw(rotation_from_rodrigues({eye.pose[i][0], eye.pose[i][1], eye.pose[i][2]}));
}

DayFile read_day(const std::string& path) {
  const MatFile file(path);
  DayFile day;
  day.names = file.read("filenames").strings();
  const MatVar data = file.read("data");
  for (size_t i = 0; i < day.names.size(); ++i) {
    if (!day.index_of.emplace(day.names[i], i).second)
      throw Error(path + ": filenames lists '" + day.names[i] + "' twice");
  }
  day.left = read_eye(data.field("left"), day.names.size());
  day.right = read_eye(data.field("right"), day.names.size());
  return day;
}

}  // namespace

int64_t mpii_person_number(const std::string& name) {
  if (name.size() < 2 || name.size() > 10 || name[0] != 'p' ||
      name.find_first_not_of("0123456789", 1) != std::string::npos)
    return -1;
  return std::stoll(name.substr(1));
}

std::vector<std::string> mpii_people(const std::string& folder, const std::string& split, int64_t hold_out,
                                     const std::string& dataset) {
  const bool everyone = split == "all";
  if (!everyone && split != "train" && split != "validation" && split != "test")
    throw Error(dataset + ": split '" + split + "': expected train, validation, test or all");
  if (!everyone && hold_out < 0)
    throw Error(dataset + " is evaluated leave-one-person-out: split '" + split +
                "' needs data.hold_out, the pXX number of the person held out");
  std::vector<std::string> people;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const int64_t number = mpii_person_number(entry.path().filename().string());
    if (!entry.is_directory() || number < 0) continue;
    if (everyone || (split == "train" ? number != hold_out : number == hold_out))
      people.push_back(entry.path().filename().string());
  }
  std::sort(people.begin(), people.end());
  if (people.empty())
    throw Error(folder + ": no pXX folders" +
                (everyone ? std::string() : " for split " + split + " with hold_out " + std::to_string(hold_out)));
  return people;
}

std::string mpii_people_description(const std::string& split, int64_t hold_out) {
  if (split == "all") return "everyone";
  return (split == "train" ? "all but p" : "p") + std::to_string(hold_out);
}

MpiiGazeDataset::MpiiGazeDataset(const std::string& root, const MpiiGazeOptions& options)
    : root_(root), options_(options) {
  if (options.subset != "evaluation" && options.subset != "all")
    throw Error("MPIIGaze: subset '" + options.subset + "': expected evaluation or all");
  if (options.eye != "left" && options.eye != "right" && options.eye != "both" && options.eye != "pair")
    throw Error("MPIIGaze: eye '" + options.eye + "': expected left, right, both or pair");
  const bool pair = options.eye == "pair";
  width_ = pair ? 2 * kWidth : kWidth;
  const fs::path normalized = fs::path(root) / "Data" / "Normalized";
  if (!fs::is_directory(normalized)) throw Error(root + ": not MPIIGaze (no Data/Normalized folder)");
  const std::vector<std::string> people = mpii_people(normalized.string(), options.split, options.hold_out, "MPIIGaze");

  const auto add = [&](const std::string& person, const std::string& day, const std::string& file,
                       const std::string& side, const EyeData& eye, size_t i) {
    const bool mirror = side == "right" && options.mirror_right;
    SampleLabel label;
    const auto& g = eye.gaze[i];
    label.gaze = unit_gaze(mirror ? -g[0] : g[0], g[1], g[2], person + "/" + day + ".mat: data." + side + ".gaze");
    label.head = head_of(eye, i);
    if (mirror) label.head[1] = -label.head[1];
    label.participant = mpii_person_number(person);
    label.key = person + "/" + day + "/" + file + "/" + side;
    labels_.push_back(label);
    Image patch(kHeight, kWidth);
    std::copy_n(eye.images.begin() + std::ptrdiff_t(i * kPatch), kPatch, patch.pixels.begin());
    if (mirror) patch = mirror_horizontal(patch);
    pixels_.insert(pixels_.end(), patch.pixels.begin(), patch.pixels.end());
  };
  // A frame's two eyes side by side as the camera sees them (the participant's right eye on the
  // image's left), each in its own normalised frame. The label is the mean of the two eyes'
  // gaze and head pose: the frame's gaze from between the eyes, to within the few degrees by
  // which the two eyes' normalised frames differ.
  std::set<std::string> paired;  // person/day/file already added
  const auto add_pair = [&](const std::string& person, const std::string& day, const std::string& file,
                            const DayFile& d, size_t i) {
    if (paired.count(person + "/" + day + "/" + file)) return;
    const auto& l = d.left.gaze[i];
    const auto& r = d.right.gaze[i];
    const std::string where = person + "/" + day + ".mat: data.left.gaze + data.right.gaze";
    SampleLabel label;
    const std::array<float, 3> gl = unit_gaze(l[0], l[1], l[2], where), gr = unit_gaze(r[0], r[1], r[2], where);
    label.gaze = unit_gaze(double(gl[0]) + gr[0], double(gl[1]) + gr[1], double(gl[2]) + gr[2], where);
    const std::array<float, 2> hl = head_of(d.left, i), hr = head_of(d.right, i);
    label.head = {(hl[0] + hr[0]) / 2, (hl[1] + hr[1]) / 2};
    label.participant = mpii_person_number(person);
    label.key = person + "/" + day + "/" + file + "/pair";
    labels_.push_back(label);
    paired.insert(person + "/" + day + "/" + file);  // only once it is added: a bad frame is refused each time
    const size_t w = size_t(kWidth);
    for (size_t row = 0; row < size_t(kHeight); ++row) {
      const auto start = [&](const EyeData& eye) { return eye.images.begin() + std::ptrdiff_t(i * kPatch + row * w); };
      pixels_.insert(pixels_.end(), start(d.right), start(d.right) + std::ptrdiff_t(w));
      pixels_.insert(pixels_.end(), start(d.left), start(d.left) + std::ptrdiff_t(w));
    }
  };
  const auto wanted = [&](const std::string& side) { return options.eye == "both" || options.eye == side; };

  for (const std::string& person : people) {
    std::map<std::string, DayFile> days;
    std::map<std::string, std::string> bad_days;  // read once, refused once per sample
    const auto day_file = [&](const std::string& day) -> const DayFile& {
      if (const auto bad = bad_days.find(day); bad != bad_days.end()) throw Error(bad->second);
      auto it = days.find(day);
      if (it != days.end()) return it->second;
      try {
        return days.emplace(day, read_day((normalized / person / (day + ".mat")).string())).first->second;
      } catch (const Error& e) {
        bad_days[day] = e.what();
        throw;
      }
    };
    if (options.subset == "all") {
      std::vector<std::string> names;
      for (const auto& entry : fs::directory_iterator(normalized / person))
        if (entry.path().extension() == ".mat") names.push_back(entry.path().stem().string());
      std::sort(names.begin(), names.end());
      for (const std::string& day : names) {
        try {
          const DayFile& d = day_file(day);
          for (size_t i = 0; i < d.names.size(); ++i) {
            if (pair) add_pair(person, day, d.names[i], d, i);
            if (wanted("left")) add(person, day, d.names[i], "left", d.left, i);
            if (wanted("right")) add(person, day, d.names[i], "right", d.right, i);
          }
        } catch (const Error& e) {
          if (!options.skip_bad) throw;
          skipped_.add(e.what());
        }
      }
      continue;
    }
    const fs::path list = fs::path(root) / "Evaluation Subset" / "sample list for eye image" / (person + ".txt");
    std::istringstream lines(read_text_file(list.string()));
    std::string line;
    for (int64_t number = 1; std::getline(lines, line); ++number) {
      const std::string where = list.string() + ":" + std::to_string(number);
      try {
        const std::string text = trim(line);
        if (text.empty()) continue;
        const auto space = text.find(' ');
        const std::string path = text.substr(0, space),
                          side = space == std::string::npos ? "" : trim(text.substr(space));
        const auto slash = path.find('/');
        if (slash == std::string::npos || (side != "left" && side != "right"))
          throw Error("expected 'dayYY/NNNN.jpg left|right', got '" + text + "'");
        if (!pair && !wanted(side)) continue;
        const std::string day = path.substr(0, slash), file = path.substr(slash + 1);
        const DayFile& d = day_file(day);
        const auto it = d.index_of.find(file);
        if (it == d.index_of.end())
          throw Error((normalized / person / (day + ".mat")).string() + " has no sample '" + file + "'");
        if (pair) {
          add_pair(person, day, file, d, it->second);
        } else {
          add(person, day, file, side, side == "left" ? d.left : d.right, it->second);
        }
      } catch (const Error& e) {
        const std::string message = where + ": " + e.what();
        if (!options.skip_bad) throw Error(message);
        skipped_.add(message);
      }
    }
  }
  if (labels_.empty() && skipped_.count == 0) throw Error(root + ": no MPIIGaze samples for eye=" + options.eye);
}

Sample MpiiGazeDataset::get(int64_t index) const {
  Sample s;
  s.label = labels_.at(size_t(index));
  s.image = Image(kHeight, width_);
  const size_t bytes = size_t(kHeight) * size_t(width_);
  std::copy_n(pixels_.begin() + std::ptrdiff_t(size_t(index) * bytes), bytes, s.image.pixels.begin());
  return s;
}

std::string MpiiGazeDataset::describe() const {
  return "mpiigaze " + root_ + " (" + mpii_people_description(options_.split, options_.hold_out) + ", " +
         options_.subset + " subset, " + (options_.eye == "pair" ? std::string("eye pairs") : options_.eye + " eyes") +
         ")";
}

}  // namespace gaze
