// best.json reading and writing. The reader is a small strict JSON parser
// (the train layer has no JSON library); it accepts any valid JSON and
// takes the three keys it knows, ignoring others so that later versions may
// add some.
#include "best_record.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/nn/serialize/atomic_file.h"

namespace kiln::train::detail {
namespace {

struct Json {
  enum class Kind { Null, Bool, Number, String, Array, Object } kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::vector<std::pair<std::string, Json>> object;

  const Json* get(const std::string& key) const {
    for (const auto& [k, v] : object)
      if (k == key) return &v;
    return nullptr;
  }
};

class Parser {
 public:
  Parser(const std::string& text, const std::string& file) : s_(text), file_(file) {}

  Json document() {
    Json v = value(0);
    ws();
    if (i_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const char* what) const {
    KILN_ERROR("CheckpointManager: '", file_, "' is not valid JSON: ", what, " at byte ", i_);
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
  }
  bool eat(char c) {
    ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail("unexpected character");
  }
  bool word(const char* w) {
    size_t n = std::char_traits<char>::length(w);
    if (s_.compare(i_, n, w) != 0) return false;
    i_ += n;
    return true;
  }

  Json value(int depth) {
    if (depth > 64) fail("nesting too deep");
    ws();
    if (i_ >= s_.size()) fail("unexpected end");
    Json v;
    char c = s_[i_];
    if (c == '{') {
      ++i_;
      v.kind = Json::Kind::Object;
      if (eat('}')) return v;
      do {
        ws();
        std::string key = string();
        expect(':');
        v.object.emplace_back(std::move(key), value(depth + 1));
      } while (eat(','));
      expect('}');
    } else if (c == '[') {
      ++i_;
      v.kind = Json::Kind::Array;
      if (eat(']')) return v;
      do v.array.push_back(value(depth + 1));
      while (eat(','));
      expect(']');
    } else if (c == '"') {
      v.kind = Json::Kind::String;
      v.string = string();
    } else if (word("true") || word("false")) {
      v.kind = Json::Kind::Bool;
      v.boolean = c == 't';
    } else if (word("null")) {
    } else {
      v.kind = Json::Kind::Number;
      size_t start = i_;
      while (i_ < s_.size() && std::string_view("+-0123456789.eE").find(s_[i_]) != std::string_view::npos) ++i_;
      auto [ptr, ec] = std::from_chars(s_.data() + start, s_.data() + i_, v.number);
      if (ec != std::errc() || ptr != s_.data() + i_ || start == i_) fail("bad number");
    }
    return v;
  }

  unsigned hex4() {
    if (i_ + 4 > s_.size()) fail("bad \\u escape");
    unsigned u = 0;
    auto [ptr, ec] = std::from_chars(s_.data() + i_, s_.data() + i_ + 4, u, 16);
    if (ec != std::errc() || ptr != s_.data() + i_ + 4) fail("bad \\u escape");
    i_ += 4;
    return u;
  }

  std::string string() {
    if (i_ >= s_.size() || s_[i_] != '"') fail("expected a string");
    ++i_;
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail("unterminated string");
      char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail("unterminated string");
      char e = s_[i_++];
      switch (e) {
        case '"': case '\\': case '/': out += e; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && s_.compare(i_, 2, "\\u") == 0) {
            i_ += 2;
            unsigned lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) fail("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(out, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
  }

  static void utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  const std::string& s_;
  const std::string& file_;
  size_t i_ = 0;
};

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;  // UTF-8 passes through
    }
  }
  return out + "\"";
}

}  // namespace

std::optional<BestRecord> read_best_record(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return std::nullopt;
  std::ifstream in(file, std::ios::binary);
  KILN_CHECK(in, "CheckpointManager: cannot read '", file.string(), "'");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  Json doc = Parser(text, file.string()).document();

  auto bad = [&](const char* what) { KILN_ERROR("CheckpointManager: '", file.string(), "': ", what); };
  if (doc.kind != Json::Kind::Object) bad("expected a JSON object");
  BestRecord r;
  const Json* metric = doc.get("metric");
  if (!metric || metric->kind != Json::Kind::String) bad("'metric' must be a string");
  r.metric = metric->string;
  const Json* mode = doc.get("mode");
  if (!mode || mode->kind != Json::Kind::String || (mode->string != "max" && mode->string != "min"))
    bad("'mode' must be \"max\" or \"min\"");
  r.higher = mode->string == "max";
  const Json* steps = doc.get("steps");
  if (!steps || steps->kind != Json::Kind::Object) bad("'steps' must be an object");
  for (const auto& [key, value] : steps->object) {
    int64_t step = -1;
    auto [ptr, err] = std::from_chars(key.data(), key.data() + key.size(), step);
    if (err != std::errc() || ptr != key.data() + key.size() || step < 0) bad("'steps' keys must be step numbers");
    if (value.kind != Json::Kind::Number || !std::isfinite(value.number)) bad("'steps' values must be numbers");
    r.steps[step] = value.number;
  }
  return r;
}

void write_best_record(const std::filesystem::path& file, const BestRecord& record) {
  std::string out = "{\n  \"metric\": " + quoted(record.metric) + ",\n  \"mode\": \"" +
                    (record.higher ? "max" : "min") + "\",\n  \"steps\": {";
  bool first = true;
  for (const auto& [step, value] : record.steps) {
    char buf[32];
    // %.17g: the double reads back to the same bits.
    std::snprintf(buf, sizeof buf, "%.17g", value);
    out += std::string(first ? "\n" : ",\n") + "    \"" + std::to_string(step) + "\": " + buf;
    first = false;
  }
  out += first ? "}\n}\n" : "\n  }\n}\n";
  nn::serialize::write_file_atomically(file.string(), out, "CheckpointManager");
}

}  // namespace kiln::train::detail
