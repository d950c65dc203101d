// Strict JSON-object field access shared by the profile and policy readers:
// unknown keys are errors, every error names the origin and the field.
#pragma once

#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "runtime/base/status.h"
#include "traces/units.h"

namespace residency::traces {

class JsonFields {
 public:
  JsonFields(const nlohmann::json& j, std::string origin) : j_(j), origin_(std::move(origin)) {}

  Status Allow(const std::set<std::string>& keys) const;
  bool Has(const char* key) const { return j_.contains(key); }
  std::string Where(const char* key) const { return origin_ + ": field '" + key + "'"; }
  Status String(const char* key, std::string& out, bool required) const;
  Status Bool(const char* key, bool& out) const;
  Status Int(const char* key, int& out, int lo, int hi) const;
  Status Size(const char* key, std::int64_t& out, bool required) const;
  Status Rate(const char* key, std::int64_t& out, bool required) const;
  Status Duration(const char* key, std::int64_t& out, bool required) const;
  // "sources": an object of field name -> where its value comes from.
  Status Sources(std::map<std::string, std::string>& out) const;
  const nlohmann::json& at(const char* key) const { return j_[key]; }
  const std::string& origin() const { return origin_; }

 private:
  const nlohmann::json& j_;
  std::string origin_;
};

// Parses `text` as one JSON value, refusing a NUL, a byte-order mark and a
// key repeated within an object; errors name `origin`.
Result<nlohmann::json> ParseStrictJson(std::string_view text, const std::string& origin);
// The same, for one JSON object.
Result<nlohmann::json> ParseJsonObject(const std::string& text, const std::string& origin);

}  // namespace residency::traces
