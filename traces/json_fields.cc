#include "traces/json_fields.h"


#include <vector>

#include "runtime/base/input_text.h"

#include <fstream>
#include <sstream>

namespace residency::traces {

Status JsonFields::Allow(const std::set<std::string>& keys) const {
  for (auto it = j_.begin(); it != j_.end(); ++it)
    if (!keys.count(it.key())) return InvalidArgument(origin_ + ": unknown field '" + Printable(it.key()) + "'");
  return Status::Ok();
}

Status JsonFields::String(const char* key, std::string& out, bool required) const {
  if (!Has(key)) return required ? InvalidArgument(Where(key) + " is missing") : Status::Ok();
  if (!j_[key].is_string()) return InvalidArgument(Where(key) + " must be a string");
  out = j_[key].get<std::string>();
  return Status::Ok();
}

Status JsonFields::Bool(const char* key, bool& out) const {
  if (!Has(key)) return Status::Ok();
  if (!j_[key].is_boolean()) return InvalidArgument(Where(key) + " must be true or false");
  out = j_[key].get<bool>();
  return Status::Ok();
}

Status JsonFields::Int(const char* key, int& out, int lo, int hi) const {
  if (!Has(key)) return Status::Ok();
  const auto& v = j_[key];
  if (!v.is_number_integer()) return InvalidArgument(Where(key) + " must be an integer");
  const auto n = v.get<std::int64_t>();
  if (n < lo || n > hi)
    return InvalidArgument(Where(key) + " must be in [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "], got " + std::to_string(n));
  out = static_cast<int>(n);
  return Status::Ok();
}

Status JsonFields::Size(const char* key, std::int64_t& out, bool required) const {
  if (!Has(key)) return required ? InvalidArgument(Where(key) + " is missing") : Status::Ok();
  RESIDENCY_ASSIGN_OR_RETURN(out, ParseBytes(j_[key], Where(key)));
  return Status::Ok();
}

Status JsonFields::Rate(const char* key, std::int64_t& out, bool required) const {
  if (!Has(key)) return required ? InvalidArgument(Where(key) + " is missing") : Status::Ok();
  RESIDENCY_ASSIGN_OR_RETURN(out, ParseRate(j_[key], Where(key)));
  return Status::Ok();
}

Status JsonFields::Duration(const char* key, std::int64_t& out, bool required) const {
  if (!Has(key)) return required ? InvalidArgument(Where(key) + " is missing") : Status::Ok();
  RESIDENCY_ASSIGN_OR_RETURN(out, ParseDuration(j_[key], Where(key)));
  return Status::Ok();
}

Status JsonFields::Sources(std::map<std::string, std::string>& out) const {
  if (!Has("sources")) return Status::Ok();
  if (!at("sources").is_object()) return InvalidArgument(Where("sources") + " must be an object");
  for (auto it = at("sources").begin(); it != at("sources").end(); ++it) {
    if (!it.value().is_string())
      return InvalidArgument(Where("sources") + "['" + Printable(it.key()) + "'] must be a string");
    out[it.key()] = it.value().get<std::string>();
  }
  return Status::Ok();
}

Result<nlohmann::json> ParseStrictJson(std::string_view text, const std::string& origin) {
  RESIDENCY_RETURN_IF_ERROR(CheckJsonBytes(text, origin));
  // nlohmann keeps the last of two equal keys; a profile with "ram" twice
  // must not silently mean the second one.
  std::vector<std::set<std::string>> open;
  std::string duplicate;
  auto watch = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    (void)depth;
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) open.emplace_back();
    if (event == E::object_end && !open.empty()) open.pop_back();
    if (event == E::key && !open.empty() && !open.back().insert(parsed.get<std::string>()).second &&
        duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), watch, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(origin + ": not valid JSON");
  if (!duplicate.empty())
    return InvalidArgument(origin + ": field '" + Printable(duplicate) + "' appears twice");
  return j;
}

Result<nlohmann::json> ParseJsonObject(const std::string& text, const std::string& origin) {
  RESIDENCY_ASSIGN_OR_RETURN(nlohmann::json j, ParseStrictJson(text, origin));
  if (!j.is_object()) return InvalidArgument(origin + ": expected a JSON object");
  return j;
}

}  // namespace residency::traces
