// One definition per setting. A config struct lists its fields once, in visit_fields():
//
//   template <class V> void visit_fields(V& v) {
//     v("port", port, "HTTP port to listen on", Range{1, 65535});
//   }
//
// and the visitors below turn that list into CLI11 flags (--port, with help and default),
// YAML keys (port:), and range checks whose messages name the key, the limit and the value.
//
// A setting lives on the component that uses it (SchedulerConfig::block_size, DispatcherConfig::
// heartbeat_timeout_ms); a process's options embed those structs and call their visit_fields,
// and a command that needs only some of them wraps its visitor in only() or except().
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "common/status.h"

namespace strata::config {

struct Range {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
};

template <typename T>
inline constexpr bool kIsList = false;
template <typename T>
inline constexpr bool kIsList<std::vector<T>> = true;  // a flag takes "1,2,4"; YAML a list

inline std::string flag_name(std::string_view key) {
  std::string flag = "--";
  for (char c : key) flag += c == '_' ? '-' : c;
  return flag;
}

// Adds every field as a CLI11 option; the default shown is the field's current value.
class CliBinder {
 public:
  explicit CliBinder(CLI::App& app, std::string group = "") : app_(app), group_(std::move(group)) {}
  template <typename T>
  void operator()(std::string_view key, T& field, std::string_view help, Range = {}) {
    if constexpr (std::is_same_v<T, bool>) {
      bind_switch(key, field, help);
    } else {
      CLI::Option* opt = app_.add_option(flag_name(key), field, std::string(help));
      if constexpr (kIsList<T>) opt->delimiter(',');
      opt->capture_default_str();
      if (!group_.empty()) opt->group(group_);
    }
  }

 private:
  // A boolean is two switches, --x and --no-x. CLI11's own pair ("--x,!--no-x") is listed as
  // "--x,--no-x{false}", which reads as "off by default" whatever the default is; so --x shows
  // the real default and --no-x gets a line of its own. Giving both is an error.
  void bind_switch(std::string_view key, bool& field, std::string_view help) {
    const std::string on = flag_name(key);
    CLI::Option* yes = app_.add_flag(on, field, std::string(help));
    yes->option_text(field ? "(default: on)" : "(default: off)");
    std::string off = flag_name("no_" + std::string(key));
    // --enable-x is also turned off by --no-x, as vLLM spells --no-enable-prefix-caching both ways.
    if (key.starts_with("enable_")) off += "," + flag_name("no_" + std::string(key.substr(7)));
    CLI::Option* no = app_.add_flag_callback(off, [&field] { field = false; }, "turn " + on + " off");
    no->excludes(yes);
    no->option_text(" ");  // instead of CLI11's "Excludes: --x" beside the name
    if (!group_.empty()) {
      yes->group(group_);
      no->group(group_);
    }
  }

  CLI::App& app_;
  std::string group_;
};

// Reads fields present in a YAML mapping; a wrong type is an error naming file and key.
class YamlReader {
 public:
  YamlReader(const YAML::Node& node, std::string source) : node_(node), source_(std::move(source)) {}
  template <typename T>
  void operator()(std::string_view key, T& field, std::string_view, Range = {}) {
    if (!status_.ok()) return;
    const YAML::Node value = node_[std::string(key)];
    if (!value) return;
    try {
      field = value.as<T>();
    } catch (const YAML::Exception&) {
      status_ = invalid_argument("{}: `{}` must be {}. Given: {}", source_, key, type_name<T>(),
                                 YAML::Dump(value));
    }
  }
  const Status& status() const { return status_; }

 private:
  template <typename T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, bool>) return "true or false";
    else if constexpr (kIsList<T>) return "a list";
    else if constexpr (std::is_integral_v<T>) return "an integer";
    else if constexpr (std::is_floating_point_v<T>) return "a number";
    else return "a string";
  }
  const YAML::Node& node_;
  std::string source_;
  Status status_;
};

// Checks numeric fields against their ranges.
class RangeChecker {
 public:
  template <typename T>
  void operator()(std::string_view key, T& field, std::string_view, Range range = {}) {
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      const double v = static_cast<double>(field);
      if (status_.ok() && (v < range.min || v > range.max)) {
        status_ = invalid_argument("`{}` ({}) must be in [{}, {}]. Given: {}", key, flag_name(key),
                                   range.min, range.max, field);
      }
    }
  }
  const Status& status() const { return status_; }

 private:
  Status status_;
};

// Writes each field back as command-line arguments ("--flag value"; booleans "--flag" or
// "--no-flag"; empty strings omitted), so a launcher can hand its settings to a child process.
class ArgWriter {
 public:
  explicit ArgWriter(std::vector<std::string>& args) : args_(args) {}
  template <typename T>
  void operator()(std::string_view key, const T& field, std::string_view, Range = {}) {
    if constexpr (std::is_same_v<T, bool>) {
      args_.push_back(flag_name(field ? std::string(key) : "no_" + std::string(key)));
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (field.empty()) return;
      args_.push_back(flag_name(key));
      args_.push_back(field);
    } else if constexpr (kIsList<T>) {
      if (field.empty()) return;
      args_.push_back(flag_name(key));
      args_.push_back(fmt::format("{}", fmt::join(field, ",")));
    } else {
      args_.push_back(flag_name(key));
      args_.push_back(fmt::format("{}", field));
    }
  }

 private:
  std::vector<std::string>& args_;
};

// Passes on to `inner` only the fields whose keys are in `keys` (only()) or not in it
// (except()), so a command can offer a subset of a component's settings under their own names.
template <typename Visitor>
class KeyFilter {
 public:
  KeyFilter(Visitor& inner, std::initializer_list<std::string_view> keys, bool keep_listed)
      : inner_(inner), keys_(keys), keep_listed_(keep_listed) {}
  template <typename T>
  void operator()(std::string_view key, T& field, std::string_view help, Range range = {}) {
    bool listed = false;
    for (std::string_view k : keys_) listed = listed || k == key;
    if (listed == keep_listed_) inner_(key, field, help, range);
  }

 private:
  Visitor& inner_;
  std::vector<std::string_view> keys_;
  bool keep_listed_;
};

template <typename Visitor>
KeyFilter<Visitor> only(Visitor& inner, std::initializer_list<std::string_view> keys) {
  return KeyFilter<Visitor>(inner, keys, true);
}
template <typename Visitor>
KeyFilter<Visitor> except(Visitor& inner, std::initializer_list<std::string_view> keys) {
  return KeyFilter<Visitor>(inner, keys, false);
}

template <typename Config>
std::vector<std::string> to_args(Config& config) {
  std::vector<std::string> args;
  ArgWriter writer(args);
  config.visit_fields(writer);
  return args;
}

// Takes a const config so that a component's validate() can use it: visit_fields binds
// mutable references for the other visitors, but RangeChecker only reads them.
template <typename Config>
Status check_ranges(const Config& config) {
  RangeChecker checker;
  const_cast<Config&>(config).visit_fields(checker);
  return checker.status();
}

// Loads `section` of a YAML file (or the whole document when section is empty) into config.
template <typename Config>
Status load_yaml(const std::string& path, const std::string& section, Config& config) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return invalid_argument("{}: cannot read YAML: {}", path, e.what());
  }
  const YAML::Node node = section.empty() ? root : root[section];
  if (!node) return ok_status();
  if (!node.IsMap()) return invalid_argument("{}: `{}` must be a mapping of settings", path, section);
  YamlReader reader(node, path + (section.empty() ? "" : " " + section));
  config.visit_fields(reader);
  return reader.status();
}

}  // namespace strata::config
