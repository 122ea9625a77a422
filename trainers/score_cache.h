// The scores of one trained model on one dataset, kept beside its run so that a pipeline run
// again (to add a variant, a seed or a baseline to a finished run) does not evaluate and
// personalise every model it already scored.
//
// <run>/scores.json holds the DatasetScores and what they were computed from: the code (the last
// commit that changed libgaze's code, libgaze_code_commit()), the checkpoint's path and the
// CRC-32C of its weights, the hash of the whole scoring config (config_hash) and the pack's path,
// size and modification time. A cached score is used only when all of these match, and never by a
// binary built from uncommitted code changes (its code commit says "+changes", so the code that
// scored cannot be named); commits of results or docs leave the cache valid. Numbers round-trip
// exactly (JSON's shortest form of each double); NaN and infinities are stored as null and read
// back as NaN.
#pragma once

#include <optional>
#include <string>

#include "libgaze/config/config.h"
#include "libgaze/core/json.h"
#include "libgaze/core/version.h"
#include "trainers/report.h"

namespace gaze {

// What a model's scores on a dataset were computed from (the key a cached score must match);
// "" when `code` cannot name the code that scores ("+changes", or "unknown" outside git).
std::string score_key(const Config& scoring, const std::string& checkpoint, const std::string& pack,
                      const std::string& code = libgaze_code_commit());

// Every field of `s` (its per-seed numbers aside: a cache holds one seed's run), and back.
Json dataset_scores_json(const DatasetScores& s);
DatasetScores dataset_scores_from_json(const Json& j, const std::string& source);

// The scores cached at `path` under `key`; nothing when the file is missing, names another key,
// or `key` is "". A file that does not parse is an error naming it (it is ours, so a broken one
// means something else wrote there).
std::optional<DatasetScores> read_cached_scores(const std::string& path, const std::string& key);
// Writes `s` under `key` (atomically); nothing when `key` is "".
void write_cached_scores(const std::string& path, const std::string& key, const DatasetScores& s);

}  // namespace gaze
