#include "datasets/pack.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <set>

#include "libgaze/core/atomic_file.h"
#include "libgaze/core/crc32c.h"
#include "libgaze/core/error.h"
#include "libgaze/core/parallel.h"
#include "libgaze/core/progress.h"
#include "libgaze/core/strings.h"
#include "libgaze/io/hdf5.h"

namespace gaze {

const std::vector<std::string> kSplitNames = {"train", "validation", "test"};

namespace {

constexpr const char* kFormat = "libgaze-pack";
constexpr int64_t kBlock = 64;  // items decoded in parallel per write

// A chunked, extendible dataset with fletcher32 (+ deflate/shuffle for images).
h5::Handle create_chunked(hid_t file, const char* name, hid_t type, std::vector<hsize_t> chunk, int compression,
                          const std::string& where) {
  std::vector<hsize_t> dims = chunk, max = chunk;
  dims[0] = 0;
  max[0] = H5S_UNLIMITED;
  h5::Handle space(H5Screate_simple(int(dims.size()), dims.data(), max.data()), H5Sclose);
  h5::Handle props = h5::untimed_properties(H5P_DATASET_CREATE, where);
  H5Pset_chunk(props.id(), int(chunk.size()), chunk.data());
  H5Pset_fletcher32(props.id());
  if (compression > 0) {
    H5Pset_shuffle(props.id());
    H5Pset_deflate(props.id(), unsigned(compression));
  }
  h5::Handle set(H5Dcreate2(file, name, type, space.id(), H5P_DEFAULT, props.id(), H5P_DEFAULT), H5Dclose);
  if (set.id() < 0) throw Error(where + ": cannot create dataset /" + std::string(name));
  return set;
}

// Appends `rows` rows to an extendible dataset.
void append_rows(hid_t set, hid_t type, int64_t start, int64_t rows, const void* data, const std::string& where) {
  if (rows == 0) return;
  h5::Handle space(H5Dget_space(set), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.id());
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
  dims[0] = hsize_t(start + rows);
  if (H5Dset_extent(set, dims.data()) < 0) throw Error(where + ": cannot extend dataset");
  h5::Handle file_space(H5Dget_space(set), H5Sclose);
  std::vector<hsize_t> offset(rank, 0), count = dims;
  offset[0] = hsize_t(start);
  count[0] = hsize_t(rows);
  H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, offset.data(), nullptr, count.data(), nullptr);
  h5::Handle memory(H5Screate_simple(rank, count.data(), nullptr), H5Sclose);
  if (H5Dwrite(set, type, memory.id(), file_space.id(), H5P_DEFAULT, data) < 0) {
    throw Error(where + ": write failed");
  }
}

// One label column of n rows (n x 3 for gaze); its shape is checked against /images first, so
// a damaged pack is refused instead of read past the buffer.
// Packs from version 3 on carry a CRC-32C of each label column (fletcher32 cannot see every
// damage: a 0x0000 <-> 0xFFFF word swap turned a participant id into -281474976710656).
void check_column_crc(hid_t set, const char* name, const void* data, size_t bytes, const std::string& where) {
  if (!h5::has_attr(set, "crc32c", where + ": /" + name)) return;
  const int64_t stored = h5::read_int_attr(set, "crc32c", where + ": /" + name);
  if (uint32_t(stored) != crc32c(data, bytes)) {
    throw Error(where + ": /" + name + ": CRC-32C mismatch: the labels are damaged");
  }
}

template <class T>
std::vector<T> read_column(hid_t file, const char* name, hid_t type, int64_t n, const std::string& where) {
  const std::string column = name;
  const hsize_t width = column == "gaze" ? 3 : column == "head" ? 2 : 1;  // values per row
  h5::Handle set(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  if (set.id() < 0) throw Error(where + ": missing dataset /" + name);
  h5::Handle space(H5Dget_space(set.id()), H5Sclose);
  hsize_t dims[2] = {0, 0};
  const int rank = H5Sget_simple_extent_ndims(space.id());
  if (rank != (width > 1 ? 2 : 1) || H5Sget_simple_extent_dims(space.id(), dims, nullptr) < 0 ||
      dims[0] != hsize_t(n) || (width > 1 && dims[1] != width)) {
    throw Error(where + ": /" + name + " has shape [" + std::to_string(dims[0]) +
                (rank == 2 ? "," + std::to_string(dims[1]) : "") + "], expected [" + std::to_string(n) +
                (width > 1 ? "," + std::to_string(width) : "") + "] (one row per image)");
  }
  // Label columns are stored uncompressed: rows declared but never written are refused before
  // anything is allocated for them.
  std::vector<T> out;
  if (double(H5Dget_storage_size(set.id())) < double(n) * double(width) * sizeof(T)) {
    throw Error(where + ": /" + name + " declares " + std::to_string(n) + " rows the file does not store");
  }
  out.resize(size_t(n) * width);
  if (n > 0 && H5Dread(set.id(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
    throw Error(where + ": /" + name + ": read failed (checksum mismatch: the file is corrupt)");
  }
  check_column_crc(set.id(), name, out.data(), out.size() * sizeof(T), where);
  return out;
}

}  // namespace

PackReport write_pack(const Dataset& source, const std::string& path, const PackOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  PackReport report;
  // The image size: given, or the first readable item's.
  int32_t height = options.height, width = options.width;
  if (height == 0 || width == 0) {
    for (int64_t i = 0; i < source.size() && height == 0; ++i) {
      try {
        const Sample s = source.get(i);
        height = s.image.height;
        width = s.image.width;
      } catch (const Error&) {
        if (!options.skip_bad) throw;
      }
    }
    if (height == 0) throw Error(source.describe() + ": no readable item to pack");
  }
  size_t key_length = 1;
  for (int64_t i = 0; i < source.size(); ++i) key_length = std::max(key_length, source.label(i).key.size());

  write_atomically(path, [&](const std::string& tmp) {
    // Declared first so it is released last, after every HDF5 handle below has closed.
    std::unique_lock<std::mutex> lock(h5::library_mutex());
    h5::File file = h5::File::create(tmp);
    h5::write_string_attr(file.id(), "format", kFormat, path);
    // 2: images_crc32c, 3: a CRC-32C per label column, 4: /head
    h5::write_int_attr(file.id(), "version", 4, path);
    h5::write_string_attr(file.id(), "source", source.describe(), path);
    h5::write_string_attr(file.id(), "participant_unit", source.participant_unit(), path);
    h5::write_string_attr(file.id(), "split_names", join(kSplitNames, ","), path);
    h5::Handle key_type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(key_type.id(), key_length);
    H5Tset_strpad(key_type.id(), H5T_STR_NULLPAD);
    auto images = create_chunked(file.id(), "images", H5T_NATIVE_UINT8, {1, hsize_t(height), hsize_t(width)},
                                 options.compression, path);
    auto gaze = create_chunked(file.id(), "gaze", H5T_NATIVE_FLOAT, {1024, 3}, 0, path);
    auto head = create_chunked(file.id(), "head", H5T_NATIVE_FLOAT, {1024, 2}, 0, path);
    auto participant = create_chunked(file.id(), "participant", H5T_NATIVE_INT64, {1024}, 0, path);
    auto split = create_chunked(file.id(), "split", H5T_NATIVE_UINT8, {1024}, 0, path);
    auto keys = create_chunked(file.id(), "keys", key_type.id(), {1024}, 0, path);
    auto timestamps = create_chunked(file.id(), "timestamp_us", H5T_NATIVE_INT64, {1024}, 0, path);
    auto blinks = create_chunked(file.id(), "blink", H5T_NATIVE_UINT8, {1024}, 0, path);
    // fletcher32 cannot see 0x0000 <-> 0xFFFF word swaps; a CRC-32C per image can.
    auto image_crcs = create_chunked(file.id(), "images_crc32c", H5T_NATIVE_UINT32, {1024}, 0, path);

    // Running CRC-32C of each label column, stored as its "crc32c" attribute at the end.
    struct Column {
      hid_t set;
      uint32_t crc = 0;
    };
    Column crc_gaze{gaze.id()}, crc_head{head.id()}, crc_participant{participant.id()}, crc_split{split.id()},
        crc_keys{keys.id()}, crc_timestamps{timestamps.id()}, crc_blinks{blinks.id()}, crc_images{image_crcs.id()};
    const auto append = [&](Column& column, hid_t type, int64_t rows, const void* data, size_t bytes) {
      append_rows(column.set, type, report.written, rows, data, path);
      column.crc = crc32c(data, bytes, column.crc);
    };
    ProgressBar bar("pack", source.size());
    for (int64_t block = 0; block < source.size(); block += kBlock) {
      const int64_t n = std::min(kBlock, source.size() - block);
      std::vector<Sample> samples(n);
      std::vector<std::string> errors(n);
      lock.unlock();  // decode without holding HDF5 (the source may be a pack itself)
      parallel_for(n, options.threads, [&](int64_t j) {
        try {
          samples[j] = source.get(block + j);
          if (samples[j].image.channels != 1) {
            throw Error(samples[j].label.key + ": packs hold grey images; read colour folders directly");
          }
          if (samples[j].image.height != height || samples[j].image.width != width) {
            if (options.height == 0) {
              throw Error(samples[j].label.key + ": image is " + std::to_string(samples[j].image.height) + "x" +
                          std::to_string(samples[j].image.width) + ", the pack's first image " +
                          std::to_string(height) + "x" + std::to_string(width) + " (give a size to resize)");
            }
            samples[j].image = resize_bilinear(samples[j].image, height, width);
          }
        } catch (const Error& e) {
          errors[j] = e.what();
        }
      });
      lock.lock();
      std::vector<uint8_t> pixels, split_ids, blink;
      std::vector<float> gazes, heads;
      std::vector<int64_t> ids, times;
      std::vector<uint32_t> crcs;
      std::string key_bytes;
      for (int64_t j = 0; j < n; ++j) {
        if (!errors[j].empty()) {
          if (!options.skip_bad) throw Error(errors[j]);
          report.skipped.add(errors[j]);
          continue;
        }
        const Sample& s = samples[j];
        pixels.insert(pixels.end(), s.image.pixels.begin(), s.image.pixels.end());
        crcs.push_back(crc32c(s.image.pixels.data(), s.image.pixels.size()));
        gazes.insert(gazes.end(), s.label.gaze.begin(), s.label.gaze.end());
        heads.insert(heads.end(), s.label.head.begin(), s.label.head.end());
        ids.push_back(s.label.participant);
        times.push_back(s.label.timestamp_us);
        blink.push_back(s.label.blink);
        split_ids.push_back(options.split_of ? options.split_of(block + j, s.label) : 0);
        std::string key = s.label.key;
        key.resize(key_length, '\0');
        key_bytes += key;
      }
      const int64_t rows = int64_t(ids.size());
      append_rows(images.id(), H5T_NATIVE_UINT8, report.written, rows, pixels.data(), path);
      append(crc_gaze, H5T_NATIVE_FLOAT, rows, gazes.data(), gazes.size() * sizeof(float));
      append(crc_head, H5T_NATIVE_FLOAT, rows, heads.data(), heads.size() * sizeof(float));
      append(crc_participant, H5T_NATIVE_INT64, rows, ids.data(), ids.size() * sizeof(int64_t));
      append(crc_split, H5T_NATIVE_UINT8, rows, split_ids.data(), split_ids.size());
      append(crc_keys, key_type.id(), rows, key_bytes.data(), key_bytes.size());
      append(crc_timestamps, H5T_NATIVE_INT64, rows, times.data(), times.size() * sizeof(int64_t));
      append(crc_blinks, H5T_NATIVE_UINT8, rows, blink.data(), blink.size());
      append(crc_images, H5T_NATIVE_UINT32, rows, crcs.data(), crcs.size() * sizeof(uint32_t));
      report.written += rows;
      bar.tick(n);
    }
    bar.finish();
    for (const Column* c :
         {&crc_gaze, &crc_head, &crc_participant, &crc_split, &crc_keys, &crc_timestamps, &crc_blinks, &crc_images}) {
      h5::write_int_attr(c->set, "crc32c", c->crc, path);
    }
    file.flush();
  });
  report.bytes = int64_t(std::filesystem::file_size(path));
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

PackDataset::PackDataset(const std::string& path, const std::string& split, int64_t hold_out, int64_t train_people)
    : path_(path), split_(split), hold_out_(hold_out), train_people_(train_people) {
  std::lock_guard<std::mutex> lock(h5::library_mutex());
  try {
    open_and_index(path, split);
  } catch (...) {
    close_handles();  // the destructor does not run for a constructor that throws
    throw;
  }
}

void PackDataset::close_handles() {
  if (images_ >= 0) H5Dclose(images_);
  if (file_ >= 0) H5Fclose(file_);
  images_ = file_ = -1;
}

void PackDataset::open_and_index(const std::string& path, const std::string& split) {
  h5::File probe = h5::File::open(path);  // validates and names the file on failure
  if (H5Aexists(probe.id(), "format") <= 0 || h5::read_string_attr(probe.id(), "format", path) != kFormat) {
    throw Error(path + ": not a libgaze pack (no format=" + std::string(kFormat) + " attribute)");
  }
  if (H5Aexists(probe.id(), "participant_unit") > 0) {
    participant_unit_ = h5::read_string_attr(probe.id(), "participant_unit", path);
  }
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file_ < 0) throw Error(path + ": cannot open HDF5 file");
  images_ = H5Dopen2(file_, "images", H5P_DEFAULT);
  if (images_ < 0) throw Error(path + ": missing dataset /images");
  h5::Handle space(H5Dget_space(images_), H5Sclose);
  hsize_t dims[3] = {0, 0, 0};
  if (H5Sget_simple_extent_ndims(space.id()) != 3) throw Error(path + ": /images is not N x H x W");
  H5Sget_simple_extent_dims(space.id(), dims, nullptr);
  const int64_t n = int64_t(dims[0]);
  if (dims[1] < 1 || dims[2] < 1 || dims[1] > 16384 || dims[2] > 16384) {
    throw Error(path + ": /images rows are " + std::to_string(dims[1]) + "x" + std::to_string(dims[2]) +
                " pixels (expected 1..16384 per side)");
  }
  height_ = int32_t(dims[1]);
  width_ = int32_t(dims[2]);
  // One chunk per image, at least a byte each once compressed: rows the file cannot hold were
  // declared but never written (the columns below would be allocated for all of them).
  if (double(n) > double(H5Dget_storage_size(images_))) {
    throw Error(path + ": /images declares " + std::to_string(n) + " images the file does not store");
  }
  const auto gaze = read_column<float>(file_, "gaze", H5T_NATIVE_FLOAT, n, path);
  // Head pose from version 4 on; older packs hold near-eye data, which has none.
  const auto head = H5Lexists(file_, "head", H5P_DEFAULT) > 0
                        ? read_column<float>(file_, "head", H5T_NATIVE_FLOAT, n, path)
                        : std::vector<float>(size_t(n) * 2, 0.0f);
  const auto participant = read_column<int64_t>(file_, "participant", H5T_NATIVE_INT64, n, path);
  const auto timestamps = read_column<int64_t>(file_, "timestamp_us", H5T_NATIVE_INT64, n, path);
  const auto blink = read_column<uint8_t>(file_, "blink", H5T_NATIVE_UINT8, n, path);
  splits_ = read_column<uint8_t>(file_, "split", H5T_NATIVE_UINT8, n, path);
  if (H5Lexists(file_, "images_crc32c", H5P_DEFAULT) > 0) {  // packs from version 2 on
    image_crcs_ = read_column<uint32_t>(file_, "images_crc32c", H5T_NATIVE_UINT32, n, path);
  }
  h5::Handle keys(H5Dopen2(file_, "keys", H5P_DEFAULT), H5Dclose);
  if (keys.id() < 0) throw Error(path + ": missing dataset /keys");
  {
    h5::Handle space(H5Dget_space(keys.id()), H5Sclose);
    hsize_t rows = 0;
    if (H5Sget_simple_extent_ndims(space.id()) != 1 || H5Sget_simple_extent_dims(space.id(), &rows, nullptr) < 0 ||
        rows != hsize_t(n)) {
      throw Error(path + ": /keys does not hold one key per image (" + std::to_string(n) + ")");
    }
  }
  h5::Handle key_type(H5Dget_type(keys.id()), H5Tclose);
  const size_t key_length = H5Tget_size(key_type.id());
  if (H5Tget_class(key_type.id()) != H5T_STRING || key_length == 0 || key_length > 4096 ||
      double(H5Dget_storage_size(keys.id())) < double(n) * double(key_length)) {
    throw Error(path + ": /keys: not " + std::to_string(n) + " stored strings of 1..4096 bytes");
  }
  std::string key_bytes(size_t(n) * key_length, '\0');
  if (n > 0 && H5Dread(keys.id(), key_type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, key_bytes.data()) < 0) {
    throw Error(path + ": /keys: read failed (checksum mismatch: the file is corrupt)");
  }
  check_column_crc(keys.id(), "keys", key_bytes.data(), key_bytes.size(), path);
  int selected = -1;
  if (!split.empty()) {
    const auto it = std::find(kSplitNames.begin(), kSplitNames.end(), split);
    if (it == kSplitNames.end())
      throw Error(path + ": unknown split '" + split + "'" + suggest_suffix(split, kSplitNames));
    selected = int(it - kSplitNames.begin());
  }
  labels_.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    SampleLabel& l = labels_[i];
    l.gaze = {gaze[3 * i], gaze[3 * i + 1], gaze[3 * i + 2]};
    const double norm =
        std::sqrt(double(l.gaze[0]) * l.gaze[0] + double(l.gaze[1]) * l.gaze[1] + double(l.gaze[2]) * l.gaze[2]);
    if (!(std::fabs(norm - 1) < 1e-3)) {  // NaN fails too
      throw Error(path + ": /gaze row " + std::to_string(i) + " is not a unit vector (" + std::to_string(l.gaze[0]) +
                  ", " + std::to_string(l.gaze[1]) + ", " + std::to_string(l.gaze[2]) + ")");
    }
    if (splits_[i] >= kSplitNames.size()) {
      throw Error(path + ": /split row " + std::to_string(i) + " is " + std::to_string(splits_[i]) +
                  ", not a split id (0-" + std::to_string(kSplitNames.size() - 1) + ")");
    }
    l.head = {head[2 * i], head[2 * i + 1]};
    if (!std::isfinite(l.head[0]) || !std::isfinite(l.head[1]))
      throw Error(path + ": /head row " + std::to_string(i) + " is not finite");
    l.participant = participant[i];
    l.timestamp_us = timestamps[i];
    l.blink = blink[i] != 0;
    l.key = key_bytes.substr(size_t(i) * key_length, key_length);
    l.key.resize(std::strlen(l.key.c_str()));
  }
  if (hold_out_ >= 0 &&
      std::none_of(labels_.begin(), labels_.end(), [&](const SampleLabel& l) { return l.participant == hold_out_; })) {
    throw Error(path + ": no " + participant_unit_ + " " + std::to_string(hold_out_) + " to hold out");
  }
  // data.train_people: the train split's first N people (lowest ids), the same N whichever
  // split is read, so a learning curve over people keeps its validation and test people.
  std::set<int64_t> train_kept;
  if (train_people_ >= 0) {
    for (int64_t i = 0; i < n; ++i)
      if (row_split(i) == 0) train_kept.insert(labels_[i].participant);
    if (int64_t(train_kept.size()) < train_people_) {
      throw Error(path + ": data.train_people=" + std::to_string(train_people_) + ", but its train split holds " +
                  std::to_string(train_kept.size()) + " (" + participant_unit_ + " ids)");
    }
    train_kept.erase(std::next(train_kept.begin(), train_people_), train_kept.end());
  }
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t fold = row_split(i);
    if (fold == 0 && train_people_ >= 0 && train_kept.count(labels_[i].participant) == 0) continue;
    // Under hold_out the fold has two sides: train, and the person held out (validation or test).
    const bool keep = selected < 0 || (hold_out_ < 0 ? fold == selected : (selected == 0) == (fold == 0));
    if (keep) rows_.push_back(i);
  }
}

PackDataset::~PackDataset() {
  std::lock_guard<std::mutex> lock(h5::library_mutex());
  close_handles();
}

Sample PackDataset::get(int64_t index) const {
  const int64_t row = rows_.at(index);
  Sample sample;
  sample.label = labels_[row];
  sample.image = Image(height_, width_);
  std::lock_guard<std::mutex> lock(h5::library_mutex());
  h5::Handle file_space(H5Dget_space(images_), H5Sclose);
  const hsize_t offset[3] = {hsize_t(row), 0, 0}, count[3] = {1, hsize_t(height_), hsize_t(width_)};
  H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, offset, nullptr, count, nullptr);
  h5::Handle memory(H5Screate_simple(3, count, nullptr), H5Sclose);
  if (H5Dread(images_, H5T_NATIVE_UINT8, memory.id(), file_space.id(), H5P_DEFAULT, sample.image.pixels.data()) < 0) {
    throw Error(path_ + ": image " + std::to_string(row) + " (" + sample.label.key +
                "): read failed (checksum mismatch: the file is corrupt)");
  }
  if (!image_crcs_.empty() &&
      crc32c(sample.image.pixels.data(), sample.image.pixels.size()) != image_crcs_[size_t(row)]) {
    throw Error(path_ + ": image " + std::to_string(row) + " (" + sample.label.key +
                "): CRC-32C mismatch: the pixels are damaged");
  }
  return sample;
}

std::string PackDataset::describe() const {
  const std::string people = train_people_ < 0 ? ""
                                               : ", the train split's first " + std::to_string(train_people_) + " " +
                                                     participant_unit_ + " ids";
  if (hold_out_ >= 0) {
    return "pack " + path_ + " (" + (split_.empty() ? "all" : split_) + ", " + participant_unit_ + " " +
           std::to_string(hold_out_) + " held out" + people + ")";
  }
  if (split_.empty() && people.empty()) return "pack " + path_;
  return "pack " + path_ + " (" + (split_.empty() ? "all" : split_) + people + ")";
}

}  // namespace gaze
