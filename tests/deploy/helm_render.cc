// Go text/template (the subset Helm charts use) and the Sprig/Helm functions of
// deploy/helm/hami, for the chart render tests. Semantics follow Go where a chart could go wrong
// differently (a field of a missing map is an error, comparisons across kinds are errors, numbers
// from values are float64 and print as Go prints them).
#include "deploy/helm_render.h"

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace hami::deploytest {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

struct TemplateError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void Throw(const std::string& m) { throw TemplateError(m); }

}  // namespace

Value Value::Str(std::string v) {
  Value x;
  x.kind = kString;
  x.s = std::move(v);
  return x;
}
Value Value::Bool(bool v) {
  Value x;
  x.kind = kBool;
  x.b = v;
  return x;
}
Value Value::Int(long long v) {
  Value x;
  x.kind = kInt;
  x.i = v;
  return x;
}
Value Value::Float(double v) {
  Value x;
  x.kind = kFloat;
  x.f = v;
  return x;
}
Value Value::List(std::vector<Value> v) {
  Value x;
  x.kind = kList;
  x.list = std::make_shared<std::vector<Value>>(std::move(v));
  return x;
}
Value Value::Map(std::map<std::string, Value> v) {
  Value x;
  x.kind = kMap;
  x.map = std::make_shared<std::map<std::string, Value>>(std::move(v));
  return x;
}
bool Value::Truthy() const {
  switch (kind) {
    case kNil:
      return false;
    case kBool:
      return b;
    case kInt:
      return i != 0;
    case kFloat:
      return f != 0;
    case kString:
      return !s.empty();
    case kList:
      return !list->empty();
    case kMap:
      return !map->empty();
  }
  return false;
}
std::string Value::KindName() const {
  static const char* names[] = {"invalid", "bool", "int", "float64", "string", "slice", "map"};
  return names[kind];
}

namespace {

// Go's %v of a float64 (strconv 'g', shortest digits, an exponent when it is < -4 or >= 6):
// 10 -> "10", 1.5 -> "1.5", 1e6 -> "1e+06" (Helm's known surprise with large numbers).
std::string GoFloat(double f) {
  if (std::isinf(f)) return f > 0 ? "+Inf" : "-Inf";
  if (std::isnan(f)) return "NaN";
  if (f == 0) return "0";
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, f);
    if (std::strtod(buf, nullptr) == f) break;
  }
  std::string e = buf;  // [-]d.ddde[+-]xx
  const std::size_t epos = e.find('e');
  const int exp = std::stoi(e.substr(epos + 1));
  std::string digits = e.substr(0, epos);
  const bool neg = digits[0] == '-';
  if (neg) digits.erase(0, 1);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int nd = static_cast<int>(digits.size());
  std::string out;
  if (exp < -4 || exp >= 6) {
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out = digits.substr(0, 1) + (nd > 1 ? "." + digits.substr(1) : "") + eb;
  } else if (exp < 0) {
    out = "0." + std::string(-exp - 1, '0') + digits;
  } else if (exp + 1 >= nd) {
    out = digits + std::string(exp + 1 - nd, '0');
  } else {
    out = digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
  }
  return (neg ? "-" : "") + out;
}

std::string Print(const Value& v) {
  switch (v.kind) {
    case Value::kNil:
      return "";  // Helm drops "<no value>"
    case Value::kBool:
      return v.b ? "true" : "false";
    case Value::kInt:
      return std::to_string(v.i);
    case Value::kFloat:
      return GoFloat(v.f);
    case Value::kString:
      return v.s;
    case Value::kList: {
      std::string o = "[";
      for (std::size_t k = 0; k < v.list->size(); ++k) o += (k ? " " : "") + Print((*v.list)[k]);
      return o + "]";
    }
    case Value::kMap: {
      std::string o = "map[";
      bool first = true;
      for (const auto& [k, x] : *v.map) {
        o += (first ? "" : " ") + k + ":" + Print(x);
        first = false;
      }
      return o + "]";
    }
  }
  return "";
}

Value FromYamlNode(const YAML::Node& n) {
  if (!n || n.IsNull()) return Value();
  if (n.IsSequence()) {
    std::vector<Value> l;
    for (const auto& x : n) l.push_back(FromYamlNode(x));
    return Value::List(std::move(l));
  }
  if (n.IsMap()) {
    std::map<std::string, Value> m;
    for (const auto& kv : n) m[kv.first.as<std::string>()] = FromYamlNode(kv.second);
    return Value::Map(std::move(m));
  }
  const std::string s = n.Scalar();
  if (n.Tag() == "!") return Value::Str(s);  // quoted
  static const std::regex num(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  if (std::regex_match(s, num)) return Value::Float(std::stod(s));
  if (s == "true" || s == "True" || s == "TRUE") return Value::Bool(true);
  if (s == "false" || s == "False" || s == "FALSE") return Value::Bool(false);
  if (s == "~" || s == "null" || s == "Null" || s == "NULL") return Value();
  return Value::Str(s);
}

Json ToJson(const Value& v) {
  switch (v.kind) {
    case Value::kNil:
      return nullptr;
    case Value::kBool:
      return v.b;
    case Value::kInt:
      return v.i;
    case Value::kFloat:
      if (std::floor(v.f) == v.f && std::fabs(v.f) < 1e15) return static_cast<long long>(v.f);
      return v.f;
    case Value::kString:
      return v.s;
    case Value::kList: {
      Json a = Json::array();
      for (const auto& x : *v.list) a.push_back(ToJson(x));
      return a;
    }
    case Value::kMap: {
      Json o = Json::object();
      for (const auto& [k, x] : *v.map) o[k] = ToJson(x);
      return o;
    }
  }
  return nullptr;
}

Value FromJson(const Json& j) {
  if (j.is_null()) return Value();
  if (j.is_boolean()) return Value::Bool(j.get<bool>());
  if (j.is_number()) return Value::Float(j.get<double>());  // Go's json: float64
  if (j.is_string()) return Value::Str(j.get<std::string>());
  if (j.is_array()) {
    std::vector<Value> l;
    for (const auto& x : j) l.push_back(FromJson(x));
    return Value::List(std::move(l));
  }
  std::map<std::string, Value> m;
  for (const auto& [k, x] : j.items()) m[k] = FromJson(x);
  return Value::Map(std::move(m));
}

// sigs.k8s.io/yaml's output shape: sorted keys, lists not indented under their key.
void EmitYaml(const Value& v, int indent, std::string& out) {
  const std::string pad(indent, ' ');
  auto scalar = [](const Value& x) {
    if (x.kind == Value::kString) return Json(x.s).dump();
    if (x.kind == Value::kNil) return std::string("null");
    return ToJson(x).dump();
  };
  if (v.kind == Value::kMap) {
    if (v.map->empty()) {
      out += "{}\n";
      return;
    }
    for (const auto& [k, x] : *v.map) {
      out += pad + Json(k).dump() + ":";
      if ((x.kind == Value::kMap && !x.map->empty()) ||
          (x.kind == Value::kList && !x.list->empty())) {
        out += "\n";
        EmitYaml(x, x.kind == Value::kMap ? indent + 2 : indent, out);
      } else {
        out += " ";
        EmitYaml(x, 0, out);
      }
    }
  } else if (v.kind == Value::kList) {
    if (v.list->empty()) {
      out += "[]\n";
      return;
    }
    for (const auto& x : *v.list) {
      out += pad + "-";
      if ((x.kind == Value::kMap && !x.map->empty()) ||
          (x.kind == Value::kList && !x.list->empty())) {
        std::string inner;
        EmitYaml(x, indent + 2, inner);
        out += " " + inner.substr(indent + 2);
      } else {
        out += " ";
        EmitYaml(x, 0, out);
      }
    }
  } else {
    out += scalar(v) + "\n";
  }
}

std::string Sha256Hex(const std::string& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr);
  std::string hex;
  char b[3];
  for (unsigned i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, "%02x", md[i]);
    hex += b;
  }
  return hex;
}

std::string B64(const std::string& s) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string o;
  std::size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    unsigned v = (unsigned char)s[i] << 16 | (unsigned char)s[i + 1] << 8 | (unsigned char)s[i + 2];
    o += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
  }
  if (i + 1 == s.size()) {
    unsigned v = (unsigned char)s[i] << 16;
    o += {t[v >> 18], t[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == s.size()) {
    unsigned v = (unsigned char)s[i] << 16 | (unsigned char)s[i + 1] << 8;
    o += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
  }
  return o;
}

// ---- parse tree ----
struct Pipe;
struct Arg {
  enum K { kField, kVar, kIdent, kLit, kSub } k;
  std::string name;                 // var or function name
  std::vector<std::string> fields;  // field chain after '.', a variable or a sub-pipeline
  Value lit;
  std::shared_ptr<Pipe> sub;
};
struct Cmd {
  std::vector<Arg> args;
};
struct Pipe {
  std::vector<std::string> vars;
  bool declare = false, assign = false;
  std::vector<Cmd> cmds;
};
struct Node;
using Nodes = std::vector<std::shared_ptr<Node>>;
struct Node {
  enum T { kText, kAction, kIf, kWith, kRange, kTemplate } t;
  std::string text;
  Pipe pipe;
  Nodes body, else_body;
};

// Lexes the inside of one action into tokens.
struct Tok {
  enum T { kStr, kNum, kIdent, kField, kVar, kLp, kRp, kPipe, kDecl, kAssign, kComma } t;
  std::string s;
  bool glued = false;  // no space before it: "(...).Field" chains a field onto a result
};

std::vector<Tok> Lex(const std::string& a) {
  std::vector<Tok> out;
  std::size_t i = 0;
  auto ident = [&](std::size_t& j) {
    while (j < a.size() && (std::isalnum((unsigned char)a[j]) || a[j] == '_')) ++j;
  };
  bool space = true;
  while (i < a.size()) {
    const char c = a[i];
    const std::size_t before = out.size();
    if (std::isspace((unsigned char)c)) {
      ++i;
      space = true;
      continue;
    }
    if (c == '"') {
      std::size_t j = i + 1;
      while (j < a.size() && a[j] != '"') j += a[j] == '\\' ? 2 : 1;
      if (j >= a.size()) Throw("unterminated string in {{" + a + "}}");
      out.push_back({Tok::kStr, Json::parse(a.substr(i, j - i + 1)).get<std::string>()});
      i = j + 1;
    } else if (c == '`') {
      std::size_t j = a.find('`', i + 1);
      if (j == std::string::npos) Throw("unterminated raw string");
      out.push_back({Tok::kStr, a.substr(i + 1, j - i - 1)});
      i = j + 1;
    } else if (std::isdigit((unsigned char)c) ||
               (c == '-' && i + 1 < a.size() && std::isdigit((unsigned char)a[i + 1]))) {
      std::size_t j = i + 1;
      while (j < a.size() && (std::isdigit((unsigned char)a[j]) || a[j] == '.')) ++j;
      out.push_back({Tok::kNum, a.substr(i, j - i)});
      i = j;
    } else if (c == '.' || c == '$') {
      std::size_t j = i + 1;
      ident(j);
      while (j < a.size() && a[j] == '.') {
        ++j;
        ident(j);
      }
      if (c == '.' && j > i + 1 && a[i + 1] == '.') Throw("bad field in {{" + a + "}}");
      out.push_back({c == '.' ? Tok::kField : Tok::kVar, a.substr(i, j - i)});
      i = j;
    } else if (std::isalpha((unsigned char)c) || c == '_') {
      std::size_t j = i;
      ident(j);
      out.push_back({Tok::kIdent, a.substr(i, j - i)});
      i = j;
    } else if (c == ':' && i + 1 < a.size() && a[i + 1] == '=') {
      out.push_back({Tok::kDecl, ":="});
      i += 2;
    } else {
      static const std::map<char, Tok::T> single = {{'(', Tok::kLp},
                                                    {')', Tok::kRp},
                                                    {'|', Tok::kPipe},
                                                    {'=', Tok::kAssign},
                                                    {',', Tok::kComma}};
      auto it = single.find(c);
      if (it == single.end()) Throw(std::string("unexpected '") + c + "' in {{" + a + "}}");
      out.push_back({it->second, std::string(1, c)});
      ++i;
    }
    if (out.size() > before) out.back().glued = !space;
    space = false;
  }
  return out;
}

std::vector<std::string> SplitFields(const std::string& s) {
  std::vector<std::string> f;
  std::size_t p = s.find('.');
  while (p != std::string::npos) {
    std::size_t q = s.find('.', p + 1);
    std::string name = s.substr(p + 1, q == std::string::npos ? std::string::npos : q - p - 1);
    if (!name.empty()) f.push_back(name);
    p = q;
  }
  return f;
}

struct PipeParser {
  const std::vector<Tok>& t;
  std::size_t i = 0;

  Pipe ParsePipe(bool top) {
    Pipe p;
    if (top) {  // $a := / $a, $b := / $a =
      std::size_t j = i;
      std::vector<std::string> vars;
      while (j < t.size() && t[j].t == Tok::kVar) {
        vars.push_back(t[j].s);
        if (j + 1 < t.size() && t[j + 1].t == Tok::kComma) {
          j += 2;
          continue;
        }
        ++j;
        break;
      }
      if (!vars.empty() && j < t.size() && (t[j].t == Tok::kDecl || t[j].t == Tok::kAssign)) {
        p.vars = vars;
        p.declare = t[j].t == Tok::kDecl;
        p.assign = !p.declare;
        i = j + 1;
      }
    }
    for (;;) {
      Cmd c;
      while (i < t.size() && t[i].t != Tok::kPipe && t[i].t != Tok::kRp)
        c.args.push_back(Operand());
      if (c.args.empty()) Throw("empty command in pipeline");
      p.cmds.push_back(std::move(c));
      if (i < t.size() && t[i].t == Tok::kPipe) {
        ++i;
        continue;
      }
      break;
    }
    return p;
  }

  Arg Operand() {
    const Tok& k = t[i++];
    Arg a;
    switch (k.t) {
      case Tok::kStr:
        a.k = Arg::kLit, a.lit = Value::Str(k.s);
        break;
      case Tok::kNum:
        a.k = Arg::kLit;
        a.lit = k.s.find('.') == std::string::npos ? Value::Int(std::stoll(k.s))
                                                   : Value::Float(std::stod(k.s));
        break;
      case Tok::kField:
        a.k = Arg::kField, a.fields = SplitFields(k.s);
        break;
      case Tok::kVar: {
        a.k = Arg::kVar;
        const std::size_t dot = k.s.find('.');
        a.name = k.s.substr(0, dot);
        if (dot != std::string::npos) a.fields = SplitFields(k.s.substr(dot));
        break;
      }
      case Tok::kIdent:
        if (k.s == "true" || k.s == "false") {
          a.k = Arg::kLit, a.lit = Value::Bool(k.s == "true");
        } else if (k.s == "nil") {
          a.k = Arg::kLit;
        } else {
          a.k = Arg::kIdent, a.name = k.s;
        }
        break;
      case Tok::kLp: {
        a.k = Arg::kSub;
        a.sub = std::make_shared<Pipe>(ParsePipe(false));
        if (i >= t.size() || t[i].t != Tok::kRp) Throw("missing ')'");
        ++i;
        if (i < t.size() && t[i].t == Tok::kField && t[i].glued) a.fields = SplitFields(t[i++].s);
        break;
      }
      default:
        Throw("unexpected '" + k.s + "'");
    }
    return a;
  }
};

Pipe ParsePipeText(const std::string& text) {
  std::vector<Tok> toks = Lex(text);
  PipeParser p{toks};
  Pipe pipe = p.ParsePipe(true);
  if (p.i != toks.size()) Throw("unexpected ')' in {{" + text + "}}");
  return pipe;
}

// Splits a template source into text and actions, applying the trim markers.
struct Piece {
  bool action;
  std::string text;
};
std::vector<Piece> Split(const std::string& src) {
  std::vector<Piece> out;
  std::size_t i = 0;
  while (i < src.size()) {
    std::size_t open = src.find("{{", i);
    std::string text = src.substr(i, open == std::string::npos ? std::string::npos : open - i);
    if (open == std::string::npos) {
      out.push_back({false, text});
      break;
    }
    std::size_t body = open + 2;
    if (src.compare(body, 2, "- ") == 0 || src.compare(body, 2, "-\n") == 0) {
      text.erase(text.find_last_not_of(" \t\r\n") + 1);
      body += 2;
    }
    out.push_back({false, text});
    std::size_t close;
    if (src.compare(body, 2, "/*") == 0 ||
        src.compare(src.find_first_not_of(" ", body), 2, "/*") == 0) {
      close = src.find("*/", body);
      if (close == std::string::npos) Throw("unclosed comment");
      close = src.find("}}", close);
    } else {
      // '}}' inside a string literal does not close the action.
      close = body;
      for (bool in_str = false; close < src.size(); ++close) {
        if (src[close] == '"' && (close == 0 || src[close - 1] != '\\')) in_str = !in_str;
        if (!in_str && src.compare(close, 2, "}}") == 0) break;
      }
    }
    if (close == std::string::npos || close >= src.size()) Throw("unclosed action");
    std::string act = src.substr(body, close - body);
    i = close + 2;
    if (act.size() >= 2 && act.compare(act.size() - 2, 2, " -") == 0) {
      act.erase(act.size() - 2);
      i = src.find_first_not_of(" \t\r\n", i);
      if (i == std::string::npos) i = src.size();
    }
    const std::size_t b = act.find_first_not_of(" \t\r\n");
    act = b == std::string::npos ? "" : act.substr(b, act.find_last_not_of(" \t\r\n") - b + 1);
    if (act.rfind("/*", 0) == 0) continue;  // comment
    out.push_back({true, act});
  }
  return out;
}

struct TreeParser {
  const std::vector<Piece>& p;
  std::map<std::string, Nodes>& defines;
  std::size_t i = 0;

  // Parses until an "end"/"else..." at this level; returns the keyword that stopped it.
  std::string List(Nodes& out) {
    while (i < p.size()) {
      const Piece& x = p[i++];
      if (!x.action) {
        if (x.text.empty()) continue;
        auto n = std::make_shared<Node>();
        n->t = Node::kText;
        n->text = x.text;
        out.push_back(n);
        continue;
      }
      const std::string& a = x.text;
      auto word = a.substr(0, a.find_first_of(" \t\n("));
      std::string rest = a.size() > word.size() ? a.substr(word.size()) : "";
      if (word == "end" || word == "else") return a;
      if (word == "if" || word == "with" || word == "range") {
        auto n = std::make_shared<Node>();
        n->t = word == "if" ? Node::kIf : word == "with" ? Node::kWith : Node::kRange;
        n->pipe = ParsePipeText(rest);
        Control(n, out);
      } else if (word == "define") {
        auto name = Lex(rest);
        if (name.size() != 1 || name[0].t != Tok::kStr) Throw("bad define");
        Nodes body;
        if (List(body) != "end") Throw("define without end");
        defines[name[0].s] = body;
      } else if (word == "template") {
        auto n = std::make_shared<Node>();
        n->t = Node::kTemplate;
        auto toks = Lex(rest);
        if (toks.empty() || toks[0].t != Tok::kStr) Throw("bad template");
        n->text = toks[0].s;
        std::vector<Tok> tail(toks.begin() + 1, toks.end());
        if (tail.empty()) tail.push_back({Tok::kField, "."});
        PipeParser pp{tail};
        n->pipe = pp.ParsePipe(false);
        out.push_back(n);
      } else {
        auto n = std::make_shared<Node>();
        n->t = Node::kAction;
        n->pipe = ParsePipeText(a);
        out.push_back(n);
      }
    }
    return "";
  }

  void Control(const std::shared_ptr<Node>& self, Nodes& out) {
    out.push_back(self);
    std::string stop = List(self->body);
    if (stop.rfind("else", 0) == 0) {
      std::string rest = stop.substr(4);
      const std::size_t b = rest.find_first_not_of(" \t\n");
      rest = b == std::string::npos ? "" : rest.substr(b);
      if (rest.empty()) {
        stop = List(self->else_body);
      } else {  // "else if ..." / "else with ...": a nested control ending at the same end
        const std::string word = rest.substr(0, rest.find_first_of(" \t\n("));
        auto inner = std::make_shared<Node>();
        inner->t = word == "if" ? Node::kIf : word == "with" ? Node::kWith : Node::kRange;
        inner->pipe = ParsePipeText(rest.substr(word.size()));
        Control(inner, self->else_body);
        return;
      }
    }
    if (stop != "end") Throw("missing {{end}}");
  }
};

// ---- evaluation ----
struct Engine {
  std::map<std::string, Nodes> defines;
  std::vector<std::pair<std::string, Value>> vars;
  int depth = 0;

  Value Lookup(const std::string& name) {
    for (auto it = vars.rbegin(); it != vars.rend(); ++it)
      if (it->first == name) return it->second;
    Throw("undefined variable: " + name);
  }
  void Set(const std::string& name, const Value& v) {
    for (auto it = vars.rbegin(); it != vars.rend(); ++it)
      if (it->first == name) {
        it->second = v;
        return;
      }
    Throw("undefined variable: " + name);
  }

  static Value Field(Value v, const std::vector<std::string>& fields, const std::string& shown) {
    for (const auto& f : fields) {
      if (v.kind == Value::kNil)
        Throw("nil pointer evaluating interface {}." + f + " (" + shown + ")");
      if (v.kind != Value::kMap) Throw("can't evaluate field " + f + " in type " + v.KindName());
      auto it = v.map->find(f);
      v = it == v.map->end() ? Value() : it->second;
    }
    return v;
  }

  Value Arg1(const Arg& a, const Value& dot) {
    switch (a.k) {
      case Arg::kLit:
        return a.lit;
      case Arg::kField:
        return Field(dot, a.fields, "." + Join(a.fields));
      case Arg::kVar:
        return Field(Lookup(a.name), a.fields, a.name + "." + Join(a.fields));
      case Arg::kSub:
        return Field(EvalPipe(*a.sub, dot), a.fields, "(...)." + Join(a.fields));
      case Arg::kIdent:
        return Call(a.name, {}, dot, nullptr, nullptr);
    }
    return Value();
  }
  static std::string Join(const std::vector<std::string>& f) {
    std::string s;
    for (const auto& x : f) s += (s.empty() ? "" : ".") + x;
    return s;
  }

  Value EvalCmd(const Cmd& c, const Value& dot, const Value* piped) {
    const Arg& head = c.args[0];
    if (head.k != Arg::kIdent) {
      if (c.args.size() > 1 || piped) Throw("can't give argument to non-function");
      return Arg1(head, dot);
    }
    std::vector<const Arg*> raw;
    for (std::size_t k = 1; k < c.args.size(); ++k) raw.push_back(&c.args[k]);
    return Call(head.name, raw, dot, piped, &c);
  }

  Value EvalPipe(const Pipe& p, const Value& dot) {
    Value v;
    bool have = false;
    for (const auto& c : p.cmds) {
      v = EvalCmd(c, dot, have ? &v : nullptr);
      have = true;
    }
    if (p.declare) {
      vars.emplace_back(p.vars.back(), v);
    } else if (p.assign) {
      Set(p.vars.back(), v);
    }
    return v;
  }

  Value Call(const std::string& fn, const std::vector<const Arg*>& raw, const Value& dot,
             const Value* piped, const Cmd*);
  std::string Include(const std::string& name, const Value& data) {
    auto it = defines.find(name);
    if (it == defines.end()) Throw("no template \"" + name + "\"");
    if (++depth > 100) Throw("include recursion too deep");
    auto saved = std::move(vars);
    vars.clear();
    vars.emplace_back("$", data);
    std::string out;
    Exec(it->second, data, out);
    vars = std::move(saved);
    --depth;
    return out;
  }

  void Exec(const Nodes& nodes, const Value& dot, std::string& out) {
    for (const auto& n : nodes) {
      const std::size_t mark = vars.size();
      switch (n->t) {
        case Node::kText:
          out += n->text;
          break;
        case Node::kAction: {
          Value v = EvalPipe(n->pipe, dot);
          if (!n->pipe.declare && !n->pipe.assign) out += Print(v);
          continue;  // a declared variable lives to the end of the enclosing list
        }
        case Node::kTemplate:
          out += Include(n->text, EvalPipe(n->pipe, dot));
          break;
        case Node::kIf: {
          Value v = EvalPipe(n->pipe, dot);
          Exec(v.Truthy() ? n->body : n->else_body, dot, out);
          break;
        }
        case Node::kWith: {
          Value v = EvalPipe(n->pipe, dot);
          if (v.Truthy()) {
            Exec(n->body, v, out);
          } else {
            Exec(n->else_body, dot, out);
          }
          break;
        }
        case Node::kRange: {
          Pipe p = n->pipe;
          p.declare = p.assign = false;
          Value v = EvalPipe(p, dot);
          std::vector<std::pair<Value, Value>> items;
          if (v.kind == Value::kList) {
            for (std::size_t k = 0; k < v.list->size(); ++k)
              items.emplace_back(Value::Int(static_cast<long long>(k)), (*v.list)[k]);
          } else if (v.kind == Value::kMap) {
            for (const auto& [k, x] : *v.map) items.emplace_back(Value::Str(k), x);
          } else if (v.kind == Value::kInt) {
            for (long long k = 0; k < v.i; ++k) items.emplace_back(Value::Int(k), Value::Int(k));
          } else if (v.kind != Value::kNil) {
            Throw("range can't iterate over " + Print(v));
          }
          if (items.empty()) Exec(n->else_body, dot, out);
          for (const auto& [k, x] : items) {
            const std::size_t m = vars.size();
            if (n->pipe.vars.size() == 1) vars.emplace_back(n->pipe.vars[0], x);
            if (n->pipe.vars.size() == 2) {
              vars.emplace_back(n->pipe.vars[0], k);
              vars.emplace_back(n->pipe.vars[1], x);
            }
            Exec(n->body, x, out);
            vars.resize(m);
          }
          break;
        }
      }
      vars.resize(mark);
    }
  }
};

// Typed parameters, as Go checks them when it calls a function.
const std::string& StrArg(const std::string& fn, const Value& v) {
  if (v.kind != Value::kString)
    Throw("error calling " + fn + ": wrong type for value; expected string; got " + v.KindName());
  return v.s;
}
long long IntArg(const std::string& fn, const Value& v) {
  if (v.kind != Value::kInt)
    Throw("error calling " + fn + ": wrong type for value; expected int; got " + v.KindName());
  return v.i;
}
const std::map<std::string, Value>& MapArg(const std::string& fn, const Value& v) {
  if (v.kind != Value::kMap)
    Throw("error calling " + fn + ": wrong type for value; expected map; got " + v.KindName());
  return *v.map;
}

// Go's eq: values of different basic kinds cannot be compared (nil compares as unequal).
bool Equal(const Value& a, const Value& b) {
  if (a.kind == Value::kNil || b.kind == Value::kNil) return a.kind == b.kind;
  if (a.kind != b.kind) Throw("error calling eq: incompatible types for comparison");
  switch (a.kind) {
    case Value::kBool:
      return a.b == b.b;
    case Value::kInt:
      return a.i == b.i;
    case Value::kFloat:
      return a.f == b.f;
    case Value::kString:
      return a.s == b.s;
    default:
      Throw("error calling eq: invalid type for comparison");
  }
}
double Num(const std::string& fn, const Value& v) {
  if (v.kind == Value::kInt) return static_cast<double>(v.i);
  if (v.kind == Value::kFloat) return v.f;
  Throw("error calling " + fn + ": incompatible types for comparison");
}

// sprig's toInt/toFloat64 (spf13/cast): numbers and numeric strings; anything else is 0.
double CastNum(const Value& v) {
  switch (v.kind) {
    case Value::kInt:
      return static_cast<double>(v.i);
    case Value::kFloat:
      return v.f;
    case Value::kBool:
      return v.b;
    case Value::kString: {
      char* end = nullptr;
      const double d = std::strtod(v.s.c_str(), &end);
      return end && *end == '\0' && !v.s.empty() ? d : 0;
    }
    default:
      return 0;
  }
}

// semverCompare for constraints of one comparison ("<op>X.Y[.Z][-pre]") on "vX.Y.Z[...]".
bool SemverCompare(const std::string& constraint, const std::string& version) {
  std::smatch c, v;
  static const std::regex cre(R"(^\s*(>=|<=|>|<|=|!=)?\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?)");
  static const std::regex vre(R"(^v?(\d+)\.(\d+)(?:\.(\d+))?)");
  if (!std::regex_search(constraint, c, cre) || !std::regex_search(version, v, vre))
    Throw("error calling semverCompare: cannot parse \"" + constraint + "\" / \"" + version + "\"");
  auto part = [](const std::ssub_match& m) { return m.matched ? std::stoi(m.str()) : 0; };
  const int a[3] = {part(v[1]), part(v[2]), part(v[3])};
  const int b[3] = {part(c[2]), part(c[3]), part(c[4])};
  const int cmp = std::lexicographical_compare(a, a + 3, b, b + 3)   ? -1
                  : std::lexicographical_compare(b, b + 3, a, a + 3) ? 1
                                                                     : 0;
  const std::string op = c[1].matched ? c[1].str() : "=";
  if (op == ">=") return cmp >= 0;
  if (op == "<=") return cmp <= 0;
  if (op == ">") return cmp > 0;
  if (op == "<") return cmp < 0;
  if (op == "!=") return cmp != 0;
  return cmp == 0;
}

std::string Indent(long long n, const std::string& s) {
  const std::string pad(static_cast<std::size_t>(std::max(0LL, n)), ' ');
  std::string o = pad;
  for (char ch : s) {
    o += ch;
    if (ch == '\n') o += pad;
  }
  return o;
}

std::string GoQuote(const std::string& s) { return Json(s).dump(); }

std::string Printf(const std::vector<Value>& a) {
  const std::string& f = StrArg("printf", a.at(0));
  std::string o;
  std::size_t k = 1;
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%' || i + 1 == f.size()) {
      o += f[i];
      continue;
    }
    const char verb = f[++i];
    if (verb == '%') {
      o += '%';
      continue;
    }
    if (k >= a.size()) {
      o += std::string("%!") + verb + "(MISSING)";
      continue;
    }
    const Value& x = a[k++];
    if (verb == 'd' && x.kind != Value::kInt) {
      o += "%!d(" + x.KindName() + "=" + Print(x) + ")";
    } else if (verb == 'q') {
      o += GoQuote(Print(x));
    } else {
      o += Print(x);
    }
  }
  return o;
}

Value Engine::Call(const std::string& fn, const std::vector<const Arg*>& raw, const Value& dot,
                   const Value* piped, const Cmd*) {
  if (fn == "and" || fn == "or") {  // short-circuit, returning the deciding operand
    Value v;
    const std::size_t n = raw.size() + (piped ? 1 : 0);
    if (n == 0) Throw(fn + ": no arguments");
    for (std::size_t i = 0; i < n; ++i) {
      v = i < raw.size() ? Arg1(*raw[i], dot) : *piped;
      if ((fn == "and") != v.Truthy()) return v;
    }
    return v;
  }
  std::vector<Value> a;
  for (const Arg* r : raw) a.push_back(Arg1(*r, dot));
  if (piped) a.push_back(*piped);
  auto need = [&](std::size_t n) {
    if (a.size() != n)
      Throw("wrong number of args for " + fn + ": want " + std::to_string(n) + " got " +
            std::to_string(a.size()));
  };
  if (fn == "include") {
    need(2);
    return Value::Str(Include(StrArg(fn, a[0]), a[1]));
  }
  if (fn == "fail") {
    need(1);
    Throw("error calling fail: " + StrArg(fn, a[0]));
  }
  if (fn == "required") {
    need(2);
    if (a[1].kind == Value::kNil || (a[1].kind == Value::kString && a[1].s.empty()))
      Throw("error calling required: " + StrArg(fn, a[0]));
    return a[1];
  }
  if (fn == "default") {
    if (a.size() < 1 || a.size() > 2) need(2);
    return a.size() == 2 && a[1].Truthy() ? a[1] : a[0];
  }
  if (fn == "coalesce") {
    for (const auto& x : a)
      if (x.Truthy()) return x;
    return Value();
  }
  if (fn == "ternary") {
    need(3);
    if (a[2].kind != Value::kBool) Throw("error calling ternary: condition is not a bool");
    return a[2].b ? a[0] : a[1];
  }
  if (fn == "empty") return need(1), Value::Bool(!a[0].Truthy());
  if (fn == "not") return need(1), Value::Bool(!a[0].Truthy());
  if (fn == "eq") {
    if (a.size() < 2) need(2);
    bool any = false;
    for (std::size_t i = 1; i < a.size(); ++i) any = any || Equal(a[0], a[i]);
    return Value::Bool(any);
  }
  if (fn == "ne") return need(2), Value::Bool(!Equal(a[0], a[1]));
  if (fn == "lt" || fn == "le" || fn == "gt" || fn == "ge") {
    need(2);
    if (a[0].kind != a[1].kind)
      Throw("error calling " + fn + ": incompatible types for comparison");
    const double x = Num(fn, a[0]), y = Num(fn, a[1]);
    return Value::Bool(fn == "lt" ? x < y : fn == "le" ? x <= y : fn == "gt" ? x > y : x >= y);
  }
  if (fn == "quote" || fn == "squote") {
    std::string o;
    for (const auto& x : a) {
      if (x.kind == Value::kNil) continue;
      o += (o.empty() ? "" : " ") + (fn == "quote" ? GoQuote(Print(x)) : "'" + Print(x) + "'");
    }
    return Value::Str(o);
  }
  if (fn == "print") {
    std::string o;
    for (const auto& x : a) o += Print(x);
    return Value::Str(o);
  }
  if (fn == "printf") return Value::Str(Printf(a));
  if (fn == "toString") return need(1), Value::Str(Print(a[0]));
  if (fn == "int" || fn == "int64")
    return need(1), Value::Int(static_cast<long long>(CastNum(a[0])));
  if (fn == "float64") return need(1), Value::Float(CastNum(a[0]));
  if (fn == "toYaml") {
    need(1);
    std::string o;
    EmitYaml(a[0], 0, o);
    while (!o.empty() && o.back() == '\n') o.pop_back();
    return Value::Str(o);
  }
  if (fn == "toJson") return need(1), Value::Str(ToJson(a[0]).dump());
  if (fn == "toPrettyJson") return need(1), Value::Str(ToJson(a[0]).dump(2));
  if (fn == "fromJson") {  // Helm: an error becomes {"Error": ...}
    need(1);
    try {
      Value v = FromJson(Json::parse(StrArg(fn, a[0])));
      if (v.kind != Value::kMap) Throw("not an object");
      return v;
    } catch (const std::exception& ex) {
      return Value::Map({{"Error", Value::Str(ex.what())}});
    }
  }
  if (fn == "indent") return need(2), Value::Str(Indent(IntArg(fn, a[0]), StrArg(fn, a[1])));
  if (fn == "nindent")
    return need(2), Value::Str("\n" + Indent(IntArg(fn, a[0]), StrArg(fn, a[1])));
  if (fn == "trunc") {
    need(2);
    const long long n = IntArg(fn, a[0]);
    const std::string& s = StrArg(fn, a[1]);
    return Value::Str(n >= 0 && static_cast<std::size_t>(n) < s.size() ? s.substr(0, n) : s);
  }
  if (fn == "trimSuffix" || fn == "trimPrefix" || fn == "hasPrefix" || fn == "hasSuffix" ||
      fn == "contains") {
    need(2);
    const std::string &x = StrArg(fn, a[0]), &s = StrArg(fn, a[1]);
    const bool pre = s.rfind(x, 0) == 0;
    const bool suf = s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
    if (fn == "trimSuffix") return Value::Str(suf ? s.substr(0, s.size() - x.size()) : s);
    if (fn == "trimPrefix") return Value::Str(pre ? s.substr(x.size()) : s);
    if (fn == "hasPrefix") return Value::Bool(pre);
    if (fn == "hasSuffix") return Value::Bool(suf);
    return Value::Bool(s.find(x) != std::string::npos);
  }
  if (fn == "trim") {
    need(1);
    const std::string& s = StrArg(fn, a[0]);
    const std::size_t b = s.find_first_not_of(" \t\r\n");
    return Value::Str(b == std::string::npos ? ""
                                             : s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1));
  }
  if (fn == "lower" || fn == "upper") {
    need(1);
    std::string s = StrArg(fn, a[0]);
    for (char& ch : s)
      ch = fn == "lower" ? std::tolower((unsigned char)ch) : std::toupper((unsigned char)ch);
    return Value::Str(s);
  }
  if (fn == "replace") {
    need(3);
    const std::string &from = StrArg(fn, a[0]), &to = StrArg(fn, a[1]);
    std::string s = StrArg(fn, a[2]);
    for (std::size_t p = 0; !from.empty() && (p = s.find(from, p)) != std::string::npos;
         p += to.size())
      s.replace(p, from.size(), to);
    return Value::Str(s);
  }
  if (fn == "splitList") {
    need(2);
    const std::string &sep = StrArg(fn, a[0]), &s = StrArg(fn, a[1]);
    std::vector<Value> l;
    for (std::size_t p = 0;;) {
      const std::size_t q = s.find(sep, p);
      l.push_back(Value::Str(s.substr(p, q == std::string::npos ? std::string::npos : q - p)));
      if (q == std::string::npos) break;
      p = q + sep.size();
    }
    return Value::List(std::move(l));
  }
  if (fn == "join") {
    need(2);
    std::string o;
    if (a[1].kind == Value::kList)
      for (const auto& x : *a[1].list) o += (o.empty() ? "" : StrArg(fn, a[0])) + Print(x);
    return Value::Str(o);
  }
  if (fn == "regexFind" || fn == "regexMatch") {
    need(2);
    std::smatch m;
    const std::string& s = StrArg(fn, a[1]);
    const bool found = std::regex_search(s, m, std::regex(StrArg(fn, a[0])));
    if (fn == "regexMatch") return Value::Bool(found);
    return Value::Str(found ? m.str() : "");
  }
  if (fn == "semverCompare")
    return need(2), Value::Bool(SemverCompare(StrArg(fn, a[0]), StrArg(fn, a[1])));
  if (fn == "b64enc") return need(1), Value::Str(B64(StrArg(fn, a[0])));
  if (fn == "sha256sum") return need(1), Value::Str(Sha256Hex(StrArg(fn, a[0])));
  if (fn == "list") return Value::List(a);
  if (fn == "has") {  // has needle list
    need(2);
    if (a[1].kind != Value::kList) return Value::Bool(false);
    for (const auto& x : *a[1].list)
      if (x.kind == a[0].kind && Equal(x, a[0])) return Value::Bool(true);
    return Value::Bool(false);
  }
  if (fn == "append") {
    need(2);
    if (a[0].kind != Value::kList)
      Throw("error calling append: " + a[0].KindName() + " is not a list");
    std::vector<Value> l = *a[0].list;
    l.push_back(a[1]);
    return Value::List(std::move(l));
  }
  if (fn == "concat") {
    std::vector<Value> l;
    for (const auto& x : a) {
      if (x.kind == Value::kNil) continue;
      if (x.kind != Value::kList) Throw("error calling concat: " + x.KindName() + " is not a list");
      l.insert(l.end(), x.list->begin(), x.list->end());
    }
    return Value::List(std::move(l));
  }
  if (fn == "dict") {
    if (a.size() % 2) Throw("dict: odd number of arguments");
    std::map<std::string, Value> m;
    for (std::size_t i = 0; i < a.size(); i += 2) m[Print(a[i])] = a[i + 1];
    return Value::Map(std::move(m));
  }
  if (fn == "hasKey") return need(2), Value::Bool(MapArg(fn, a[0]).count(StrArg(fn, a[1])) > 0);
  if (fn == "get") {
    need(2);
    const auto& m = MapArg(fn, a[0]);
    auto it = m.find(StrArg(fn, a[1]));
    return it == m.end() ? Value::Str("") : it->second;
  }
  if (fn == "dig") {  // dig "k1" "k2" default map
    if (a.size() < 3) Throw("dig: want keys, a default and a map");
    Value v = a.back();
    for (std::size_t i = 0; i + 2 < a.size(); ++i) {
      const auto& m = MapArg(fn, v);
      auto it = m.find(StrArg(fn, a[i]));
      if (it == m.end()) return a[a.size() - 2];
      v = it->second;
    }
    return v;
  }
  if (fn == "index") {
    if (a.empty()) need(2);
    Value v = a[0];
    for (std::size_t i = 1; i < a.size(); ++i) {
      if (v.kind == Value::kMap) {
        auto it = v.map->find(StrArg(fn, a[i]));
        v = it == v.map->end() ? Value() : it->second;
      } else if (v.kind == Value::kList) {
        const long long k = IntArg(fn, a[i]);
        if (k < 0 || static_cast<std::size_t>(k) >= v.list->size())
          Throw("error calling index: index out of range: " + std::to_string(k));
        v = (*v.list)[k];
      } else {
        Throw("error calling index: can't index item of type " + v.KindName());
      }
    }
    return v;
  }
  if (fn == "len") {
    need(1);
    if (a[0].kind == Value::kString) return Value::Int(static_cast<long long>(a[0].s.size()));
    if (a[0].kind == Value::kList) return Value::Int(static_cast<long long>(a[0].list->size()));
    if (a[0].kind == Value::kMap) return Value::Int(static_cast<long long>(a[0].map->size()));
    Throw("error calling len: len of " + a[0].KindName());
  }
  if (fn == "kindIs") return need(2), Value::Bool(a[1].KindName() == StrArg(fn, a[0]));
  if (fn == "kindOf") return need(1), Value::Str(a[0].KindName());
  if (fn == "lookup") return Value::Map();  // `helm template`: no cluster to look up
  if (fn == "genCA" || fn == "genSignedCert") {
    // Placeholders in PEM shape: a render test checks wiring, not cryptography.
    const std::string who = Print(a.at(0));
    return Value::Map({{"Cert", Value::Str("-----BEGIN CERTIFICATE-----\n" + B64(fn + ":" + who) +
                                           "\n-----END CERTIFICATE-----\n")},
                       {"Key", Value::Str("-----BEGIN RSA PRIVATE KEY-----\n" + B64(who) +
                                          "\n-----END RSA PRIVATE KEY-----\n")}});
  }
  Throw("function \"" + fn + "\" not defined");
}

}  // namespace

StatusOr<Value> ParseValues(const std::string& yaml) {
  try {
    YAML::Node n = YAML::Load(yaml);
    Value v = FromYamlNode(n);
    if (v.kind == Value::kNil) return Value::Map();
    if (v.kind != Value::kMap) return InvalidArgument("values: the document is not a map");
    return v;
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string("values: ") + e.what());
  }
}

Value Coalesce(const Value& user, const Value& defaults) {
  if (user.kind != Value::kMap || defaults.kind != Value::kMap) return user;
  std::map<std::string, Value> out = *user.map;
  for (const auto& [k, d] : *defaults.map) {
    auto it = out.find(k);
    if (it == out.end()) {
      out[k] = d;
    } else if (it->second.kind == Value::kNil) {
      out.erase(it);  // Helm: a null removes the chart's default
    } else if (it->second.kind == Value::kMap && d.kind == Value::kMap) {
      it->second = Coalesce(it->second, d);
    }
  }
  return Value::Map(std::move(out));
}

StatusOr<std::map<std::string, std::string>> RenderChart(
    const std::string& chart_dir, const std::vector<std::string>& user_values,
    const RenderOptions& opts) {
  auto slurp = [](const fs::path& p) {
    std::ifstream in(p);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  auto defaults = ParseValues(slurp(fs::path(chart_dir) / "values.yaml"));
  if (!defaults.ok()) return defaults.status();
  Value merged = Value::Map();
  for (const auto& text : user_values) {
    auto user = ParseValues(text);
    if (!user.ok()) return user.status();
    merged = Coalesce(*user, merged);
  }
  YAML::Node chart = YAML::LoadFile((fs::path(chart_dir) / "Chart.yaml").string());
  Value chart_obj = Value::Map({{"Name", Value::Str(chart["name"].as<std::string>())},
                                {"Version", Value::Str(chart["version"].as<std::string>())},
                                {"AppVersion", Value::Str(chart["appVersion"].as<std::string>())}});
  std::smatch m;
  std::regex_search(opts.kube_version, m, std::regex(R"(v?(\d+)\.(\d+))"));
  Value caps = Value::Map({{"KubeVersion", Value::Map({{"Version", Value::Str(opts.kube_version)},
                                                       {"Major", Value::Str(m[1])},
                                                       {"Minor", Value::Str(m[2])}})}});
  Value release = Value::Map({{"Name", Value::Str(opts.release_name)},
                              {"Namespace", Value::Str(opts.release_namespace)},
                              {"Service", Value::Str("Helm")},
                              {"IsInstall", Value::Bool(true)},
                              {"IsUpgrade", Value::Bool(false)},
                              {"Revision", Value::Int(1)}});
  const Value values = Coalesce(merged, *defaults);

  Engine e;
  std::map<std::string, Nodes> files;
  const fs::path tdir = fs::path(chart_dir) / "templates";
  std::vector<fs::path> paths;
  for (const auto& f : fs::recursive_directory_iterator(tdir))
    if (f.is_regular_file()) paths.push_back(f.path());
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    const std::string rel = fs::relative(p, tdir).string();
    try {
      auto pieces = Split(slurp(p));
      TreeParser tp{pieces, e.defines};
      Nodes nodes;
      if (!tp.List(nodes).empty()) Throw("unexpected {{end}} or {{else}}");
      files[rel] = std::move(nodes);
    } catch (const std::exception& ex) {
      return InvalidArgument("parse error in " + rel + ": " + ex.what());
    }
  }
  std::map<std::string, std::string> out;
  for (const auto& [rel, nodes] : files) {
    if (fs::path(rel).filename().string().rfind('_', 0) == 0) continue;
    Value root =
        Value::Map({{"Values", values},
                    {"Chart", chart_obj},
                    {"Release", release},
                    {"Capabilities", caps},
                    {"Template", Value::Map({{"Name", Value::Str("hami/templates/" + rel)},
                                             {"BasePath", Value::Str("hami/templates")}})}});
    try {
      e.vars = {{"$", root}};
      std::string text;
      e.Exec(nodes, root, text);
      out[rel] = text;
    } catch (const std::exception& ex) {
      return InvalidArgument("execution error at (hami/templates/" + rel + "): " + ex.what());
    }
  }
  return out;
}

}  // namespace hami::deploytest
