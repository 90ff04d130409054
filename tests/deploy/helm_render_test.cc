// The `helm template` stand-in (helm_render.h) against Go text/template and Helm behaviour that
// the chart tests rely on: number printing, missing-map errors, comparisons across kinds,
// short-circuit and/or, trim markers, variables, include, value merge with null.
#include "deploy/helm_render.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>

namespace hami::deploytest {
namespace {

namespace fs = std::filesystem;

// A one-template chart in a fresh directory; returns the rendered t.yaml or the error.
std::string RenderOne(const std::string& tmpl, const std::string& defaults = "",
                      const std::vector<std::string>& values = {}) {
  const fs::path dir =
      fs::temp_directory_path() / ("helm_render_test_" + std::to_string(::getpid()) + "_" +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  fs::remove_all(dir);
  fs::create_directories(dir / "templates");
  std::ofstream(dir / "Chart.yaml") << "name: t\nversion: 1.2.3\nappVersion: \"4.5\"\n";
  std::ofstream(dir / "values.yaml") << defaults;
  std::ofstream(dir / "templates" / "_h.tpl") << "{{- define \"h.name\" -}}<{{ . }}>{{- end -}}";
  std::ofstream(dir / "templates" / "t.yaml") << tmpl;
  auto r = RenderChart(dir.string(), values);
  fs::remove_all(dir);
  if (!r.ok()) return "ERROR: " + r.status().message();
  return r->at("t.yaml");
}

TEST(NodeHelmRender, NumbersPrintAsGoPrintsFloat64) {
  EXPECT_EQ(RenderOne("{{ .Values.a }} {{ .Values.b }} {{ .Values.c }} {{ .Values.d }} {{ 3 }}",
                      "a: 1000000\nb: 1.5\nc: 31992\nd: 0.00001\n"),
            "1e+06 1.5 31992 1e-05 3");
  EXPECT_EQ(
      RenderOne("{{ kindOf .Values.a }} {{ kindOf 3 }} {{ kindOf .Values.s }}", "a: 1\ns: x\n"),
      "float64 int string");
}

TEST(NodeHelmRender, GoErrorsAreErrors) {
  EXPECT_NE(RenderOne("{{ .Values.missing.x }}").find("nil pointer evaluating interface {}.x"),
            std::string::npos);
  EXPECT_NE(RenderOne("{{ eq .Values.c \"10\" }}", "c: 10\n").find("incompatible types"),
            std::string::npos);
  EXPECT_NE(RenderOne("{{ nosuchfunction 1 }}").find("not defined"), std::string::npos);
  EXPECT_NE(RenderOne("{{ fail \"stop here\" }}").find("stop here"), std::string::npos);
  EXPECT_NE(RenderOne("{{ if .Values.a }}").find("missing {{end}}"), std::string::npos);
  EXPECT_NE(RenderOne("{{ indent 2 .Values.n }}", "n: 1\n").find("expected string"),
            std::string::npos);
}

TEST(NodeHelmRender, ControlFlowVariablesAndTrimMarkers) {
  EXPECT_EQ(RenderOne("{{ if and .Values.missing .Values.missing.x }}y{{ else }}n{{ end }}"), "n");
  EXPECT_EQ(RenderOne("{{ or .Values.a \"dflt\" }}|{{ .Values.a | default \"d\" }}"), "dflt|d");
  EXPECT_EQ(RenderOne("a  \n  {{- \"b\" -}}  \n  c"), "abc");
  EXPECT_EQ(
      RenderOne("{{ range $k, $v := .Values.m }}{{ $k }}={{ $v }};{{ end }}", "m: {z: 1, a: x}\n"),
      "a=x;z=1;");
  EXPECT_EQ(RenderOne("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"), "2");
  EXPECT_EQ(RenderOne("{{ with .Values.s }}{{ . }}{{ else }}none{{ end }}", "s: \"\"\n"), "none");
  EXPECT_EQ(RenderOne("{{ include \"h.name\" .Chart.Name }} {{ .Chart.AppVersion }}"), "<t> 4.5");
  EXPECT_EQ(RenderOne("{{ if eq 1 2 }}a{{ else if eq 2 2 }}b{{ else }}c{{ end }}"), "b");
  EXPECT_EQ(RenderOne("{{ (dict \"k\" \"v\").k }} {{ printf \"%s-%d\" \"x\" 3 }}"), "v x-3");
}

TEST(NodeHelmRender, ValuesMergeLikeHelm) {
  const std::string defaults = "m: {a: 1, b: 2}\nl: [1, 2]\ns: x\n";
  EXPECT_EQ(RenderOne("{{ .Values.m.a }} {{ .Values.m.b }} {{ .Values.l }} {{ .Values.s }}",
                      defaults, {"m: {b: 3}\nl: [9]\n", "s: y\n"}),
            "1 3 [9] y");
  EXPECT_EQ(RenderOne("{{ hasKey .Values.m \"a\" }}", defaults, {"m: {a: null}\n"}), "false");
  const std::string y = RenderOne("{{ toYaml .Values }}", "m: {a: [1, {b: \"on\"}], c: {}}\n");
  YAML::Node n = YAML::Load(y);
  EXPECT_EQ(n["m"]["a"][1]["b"].as<std::string>(), "on") << y;
  EXPECT_TRUE(n["m"]["c"].IsMap()) << y;
}

}  // namespace
}  // namespace hami::deploytest
