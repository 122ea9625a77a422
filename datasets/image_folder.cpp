#include "datasets/image_folder.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "datasets/codec.h"
#include "libgaze/core/error.h"

namespace gaze {

ImageFolderDataset::ImageFolderDataset(const std::string& root, int32_t channels) : root_(root), channels_(channels) {
  namespace fs = std::filesystem;
  if (channels != 1 && channels != 3) throw Error(root + ": image folders decode to 1 or 3 channels");
  if (!fs::is_directory(root)) throw Error(root + ": image folder not found");
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    if (entry.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg")) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw Error(root + ": no .png/.jpg images found");
  std::map<std::string, int64_t> classes;
  for (const fs::path& f : files) {
    const std::string cls = fs::relative(f.parent_path(), root).string();
    const auto [it, inserted] = classes.emplace(cls, static_cast<int64_t>(classes.size()));
    Item item{f.string(), {}};
    item.label.participant = it->second;
    item.label.key = fs::relative(f, root).string();
    items_.push_back(std::move(item));
  }
}

Sample ImageFolderDataset::get(int64_t index) const {
  const Item& item = items_.at(index);
  const auto bytes = read_binary_file(item.path);
  const bool png = bytes.size() >= 4 && bytes[0] == 0x89 && bytes[1] == 'P';
  return {png ? decode_png(bytes.data(), bytes.size(), item.path, channels_)
              : decode_jpeg(bytes.data(), bytes.size(), item.path, channels_),
          item.label};
}

}  // namespace gaze
