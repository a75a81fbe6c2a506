#include "router/json_body.h"

#include <fmt/format.h>

#include <optional>
#include <vector>

#include "common/utf8.h"

namespace strata::router {
namespace {

using nlohmann::json;

// Offset of the first byte that does not start a valid UTF-8 sequence, if any.
std::optional<size_t> first_invalid_utf8(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    const size_t n = utf8::valid_sequence_length(s, pos);
    if (n == 0) return pos;
    pos += n;
  }
  return std::nullopt;
}

// Builds the DOM from SAX events while tracking where in it the parser is.
class PathTrackingBuilder {
 public:
  explicit PathTrackingBuilder(int max_depth) : max_depth_(max_depth) {}

  bool null() { return add(json(nullptr)); }
  bool boolean(bool v) { return add(json(v)); }
  bool number_integer(json::number_integer_t v) { return add(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return add(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t& /*raw*/) { return add(json(v)); }
  bool string(json::string_t& v) { return add(json(std::move(v))); }
  bool binary(json::binary_t& /*v*/) { return false; }  // not produced by the JSON format

  bool start_object(std::size_t /*elements*/) { return open(json::object()); }
  bool start_array(std::size_t /*elements*/) { return open(json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(json::string_t& k) {
    frames_.back().key = std::move(k);
    frames_.back().expect_key = false;
    return true;
  }

  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& ex) {
    error_position_ = position;
    error_id_ = ex.id;
    error_what_ = ex.what();
    error_path_ = path();
    return false;
  }

  bool depth_exceeded() const { return depth_exceeded_; }
  size_t error_position() const { return error_position_; }
  int error_id() const { return error_id_; }
  const std::string& error_what() const { return error_what_; }
  const std::string& error_path() const { return error_path_; }
  json take_root() { return std::move(root_); }

  // "messages[1].content": the value being read; "" at the top level. While an object waits
  // for a key, the path is the object's own.
  std::string path() const {
    std::string out;
    for (size_t i = 0; i < frames_.size(); ++i) {
      const Frame& f = frames_[i];
      if (f.container->is_array()) {
        // The innermost array is reading its next element; an outer one holds, as its last
        // element, the container being read.
        const bool innermost = i + 1 == frames_.size();
        out += fmt::format("[{}]", f.container->size() - (innermost ? 0 : 1));
      } else if (!f.expect_key) {
        if (!out.empty()) out += '.';
        out += f.key;
      }
    }
    return out;
  }

 private:
  struct Frame {
    json* container = nullptr;
    std::string key;  // objects: the key whose value comes next
    bool expect_key = true;
  };

  json* place(json&& v) {
    if (frames_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Frame& f = frames_.back();
    if (f.container->is_array()) {
      f.container->push_back(std::move(v));
      return &f.container->back();
    }
    json& slot = (*f.container)[f.key];
    slot = std::move(v);
    f.expect_key = true;
    return &slot;
  }

  bool add(json&& v) {
    place(std::move(v));
    return true;
  }

  bool open(json&& empty) {
    if (static_cast<int>(frames_.size()) >= max_depth_) {
      depth_exceeded_ = true;
      error_path_ = path();
      return false;
    }
    // The parent keeps expecting this value's key until the container closes; `place`
    // resets expect_key, so restore the parent's key for paths inside the container.
    std::string parent_key = frames_.empty() ? std::string() : frames_.back().key;
    json* slot = place(std::move(empty));
    if (!frames_.empty() && !frames_.back().container->is_array()) {
      frames_.back().expect_key = false;
      frames_.back().key = std::move(parent_key);
    }
    frames_.push_back(Frame{.container = slot, .key = "", .expect_key = true});
    return true;
  }

  bool close() {
    frames_.pop_back();
    if (!frames_.empty()) frames_.back().expect_key = true;
    return true;
  }

  int max_depth_;
  json root_;
  std::vector<Frame> frames_;
  bool depth_exceeded_ = false;
  size_t error_position_ = 0;
  int error_id_ = 0;
  std::string error_what_;
  std::string error_path_;
};

ApiError bad_request(std::string message, std::string param = "") {
  return ApiError{.http_status = 400,
                  .message = utf8::to_valid_lossy(message),
                  .type = "invalid_request_error",
                  .param = std::move(param),
                  .code = ""};
}

// "[json.exception.parse_error.101] parse error at ..." → "parse error at ...".
std::string_view strip_exception_prefix(std::string_view what) {
  if (!what.empty() && what.front() == '[') {
    const size_t end = what.find("] ");
    if (end != std::string_view::npos) return what.substr(end + 2);
  }
  return what;
}

std::string field_name(const std::string& path) {
  return path.empty() ? std::string("request body") : fmt::format("`{}`", path);
}

}  // namespace

std::string describe_json(const json& value) {
  constexpr size_t kMaxChars = 80;
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxChars) {
    size_t cut = kMaxChars;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text = text.substr(0, cut) + "...";
  }
  return text;
}

std::variant<json, ApiError> parse_json_body(std::string_view body, int max_depth) {
  PathTrackingBuilder builder(max_depth);
  bool ok = false;
  try {
    ok = json::sax_parse(body.begin(), body.end(), &builder);
  } catch (const std::exception& e) {
    return bad_request(fmt::format("Request body could not be parsed: {}", e.what()));
  }
  if (ok) return builder.take_root();

  if (builder.depth_exceeded()) {
    return bad_request(
        fmt::format("Request body nests arrays/objects more than {} levels deep (at {}). "
                    "Flatten the request.",
                    max_depth, field_name(builder.error_path())),
        builder.error_path());
  }
  const std::string& path = builder.error_path();
  if (builder.error_id() == 406) {  // out_of_range.406: number overflow
    // what(): "... number overflow parsing '1e309'"; echo the number as given.
    std::string_view what = builder.error_what();
    const size_t open = what.find('\'');
    const size_t close = what.rfind('\'');
    const std::string_view given =
        open < close ? what.substr(open + 1, close - open - 1) : std::string_view("?");
    return bad_request(fmt::format("{} is too large a number (it overflows a double). Given: {}",
                                   field_name(path), given),
                       path);
  }
  // The lexer stops at (just past) the first invalid byte: if that byte lies before where
  // parsing stopped, invalid UTF-8 is the cause.
  if (auto bad = first_invalid_utf8(body); bad && *bad < builder.error_position()) {
    return bad_request(
        fmt::format("{} is not valid UTF-8 (byte 0x{:02x} at offset {}). Send text encoded "
                    "as UTF-8.",
                    field_name(path), static_cast<unsigned char>(body[*bad]), *bad),
        path);
  }
  return bad_request(fmt::format("Request body is not valid JSON: {} (byte offset {})",
                                 strip_exception_prefix(builder.error_what()),
                                 builder.error_position()));
}

}  // namespace strata::router
