#include "datasets/openeds.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "datasets/codec.h"
#include "datasets/csv.h"
#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"

namespace gaze {
namespace {

namespace fs = std::filesystem;

// "012" -> 12; -1 when the stem is not a plain number.
int64_t frame_number(const std::string& stem) {
  if (stem.empty() || stem.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(stem);
}

// Numeric order when both names are numbers, else lexicographic.
bool natural_less(const std::string& a, const std::string& b) {
  const int64_t na = frame_number(a), nb = frame_number(b);
  if (na >= 0 && nb >= 0 && na != nb) return na < nb;
  return a < b;
}

// A field without surrounding blanks or quotes.
std::string bare(const std::string& field) {
  std::string s = trim(field);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = trim(s.substr(1, s.size() - 2));
  return s;
}

std::string lower_bare(const std::string& field) {
  std::string s = bare(field);
  std::transform(s.begin(), s.end(), s.begin(), ::tolower);
  return s;
}

// A first row naming its columns ("seq_id,participant", "sequence,subject", ...).
bool is_header(const CsvRow& row) {
  static const std::set<std::string> sequence_names = {"seq", "seq_id", "sequence", "sequence_id", "sequence_name"};
  static const std::set<std::string> person_names = {"participant", "participant_id", "subject", "subject_id", "person",
                                                     "person_id",   "user",           "user_id", "id"};
  return row.fields.size() >= 2 &&
         (sequence_names.count(lower_bare(row.fields[0])) || person_names.count(lower_bare(row.fields[1])));
}

// seq -> participant number. Ids that are all integers keep their value; otherwise every
// distinct id (e.g. "p07") is numbered in sorted order.
std::map<std::string, int64_t> read_participants(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::map<std::string, int64_t> line_of;
  const std::vector<CsvRow> rows = read_csv_rows(path);
  for (size_t r = 0; r < rows.size(); ++r) {
    const CsvRow& row = rows[r];
    if (r == 0 && is_header(row)) continue;
    const std::string where = path + ":" + std::to_string(row.line);
    if (row.fields.size() < 2) throw Error(where + ": expected 'seq_id,participant'");
    const std::string seq = bare(row.fields[0]), id = bare(row.fields[1]);
    if (seq.empty() || id.empty()) throw Error(where + ": empty sequence or participant id");
    if (line_of.count(seq)) {
      throw Error(where + ": sequence '" + seq + "' already mapped on line " + std::to_string(line_of[seq]));
    }
    line_of[seq] = row.line;
    pairs.emplace_back(seq, id);
  }
  const bool numeric = std::all_of(pairs.begin(), pairs.end(), [](const auto& p) {
    return p.second.find_first_not_of("0123456789") == std::string::npos && p.second.size() < 18;
  });
  std::map<std::string, int64_t> number_of;
  if (!numeric) {
    for (const auto& p : pairs) number_of.emplace(p.second, 0);
    int64_t next = 0;
    for (auto& [id, number] : number_of) number = next++;
  }
  std::map<std::string, int64_t> out;
  for (const auto& [seq, id] : pairs) out[seq] = numeric ? std::stoll(id) : number_of[id];
  return out;
}

}  // namespace

OpenEdsDataset::OpenEdsDataset(const std::string& root, const OpenEdsOptions& options)
    : root_(root), options_(options) {
  const fs::path split_dir = fs::path(root) / options.split;
  const fs::path sequences_dir = split_dir / "sequences";
  const fs::path labels_dir = split_dir / "labels";
  if (!fs::is_directory(sequences_dir)) {
    throw Error(sequences_dir.string() +
                ": not found (expected the OpenEDS2020 layout "
                "<root>/<split>/sequences/<seq>/NNN.png)");
  }
  // Participants: the given mapping, else <root>/participants.csv when present (gaze synth
  // writes one), else each sequence is its own participant (numbered by its id when numeric).
  std::string participants_file = options.participants_file;
  if (participants_file.empty() && fs::is_regular_file(fs::path(root) / "participants.csv")) {
    participants_file = (fs::path(root) / "participants.csv").string();
  }
  std::map<std::string, int64_t> participants;
  if (!participants_file.empty()) participants = read_participants(participants_file);
  by_person_ = !participants.empty();

  std::vector<std::string> sequences;
  for (const auto& entry : fs::directory_iterator(sequences_dir)) {
    if (entry.is_directory()) sequences.push_back(entry.path().filename().string());
  }
  std::sort(sequences.begin(), sequences.end(), natural_less);

  for (size_t s = 0; s < sequences.size(); ++s) {
    const std::string& seq = sequences[s];
    const std::string label_path = (labels_dir / (seq + ".txt")).string();
    try {
      if (!fs::is_regular_file(label_path)) throw Error(label_path + ": label file not found");
      // Label rows by frame number.
      std::map<int64_t, std::array<float, 3>> labels;
      for (const CsvRow& row : read_csv_rows(label_path)) {
        const std::string where = label_path + ":" + std::to_string(row.line);
        try {
          if (row.fields.size() < 4) {
            throw Error(where + ": expected 'id,x,y,z', got " + std::to_string(row.fields.size()) + " fields");
          }
          const int64_t id = parse_int64(row.fields[0], where + ": frame id");
          labels[id] = unit_gaze(parse_finite_double(row.fields[1], where + ": x"),
                                 parse_finite_double(row.fields[2], where + ": y"),
                                 parse_finite_double(row.fields[3], where + ": z"), where);
        } catch (const Error& e) {
          if (!options.skip_bad) throw;
          skipped_.add(e.what());
        }
      }
      std::vector<std::string> frames;
      for (const auto& entry : fs::directory_iterator(sequences_dir / seq)) {
        if (entry.path().extension() == ".png") frames.push_back(entry.path().stem().string());
      }
      std::sort(frames.begin(), frames.end(), natural_less);
      // Optional list of blink frames (written by gaze synth; absent in the real release).
      const std::set<int64_t> blink_frames = read_id_list((split_dir / "blinks" / (seq + ".txt")).string());
      int64_t participant = frame_number(seq) >= 0 ? frame_number(seq) : static_cast<int64_t>(s);
      if (!participants.empty()) {
        const auto it = participants.find(seq);
        if (it == participants.end()) {
          throw Error(participants_file + ": no participant for sequence '" + seq + "'");
        }
        participant = it->second;
      }
      for (const std::string& stem : frames) {
        const std::string path = (sequences_dir / seq / (stem + ".png")).string();
        const int64_t number = frame_number(stem);
        const auto label = labels.find(number);
        if (number < 0 || label == labels.end()) {
          const std::string message = path + ": no label row for frame '" + stem + "' in " + label_path;
          if (!options.skip_bad) throw Error(message);
          skipped_.add(message);
          continue;
        }
        Item item{path, {}};
        item.label.gaze = label->second;
        item.label.participant = participant;
        item.label.key = seq + "/" + stem;
        item.label.timestamp_us = number * 10000;  // 100 Hz
        item.label.blink = blink_frames.count(number) > 0;
        items_.push_back(std::move(item));
      }
    } catch (const Error& e) {
      if (!options.skip_bad) throw;
      skipped_.add(e.what());
    }
  }
  if (items_.empty() && skipped_.count == 0) {
    throw Error(sequences_dir.string() + ": no frames found");
  }
}

Sample OpenEdsDataset::get(int64_t index) const {
  const Item& item = items_.at(index);
  Sample sample{read_png(item.path), item.label};
  if (options_.expected_height > 0 &&
      (sample.image.height != options_.expected_height || sample.image.width != options_.expected_width)) {
    throw Error(item.path + ": image is " + std::to_string(sample.image.width) + "x" +
                std::to_string(sample.image.height) + ", expected " + std::to_string(options_.expected_width) + "x" +
                std::to_string(options_.expected_height));
  }
  return sample;
}

std::string OpenEdsDataset::describe() const { return "openeds " + root_ + " (" + options_.split + ")"; }

}  // namespace gaze
