{{/* Names and labels shared by every template. */}}
{{- define "hami.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hami.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "hami.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end -}}

{{- define "hami.scheduler" -}}{{ include "hami.fullname" . }}-scheduler{{- end -}}
{{- define "hami.device-plugin" -}}{{ include "hami.fullname" . }}-device-plugin{{- end -}}

{{- define "hami.labels" -}}
app.kubernetes.io/name: {{ include "hami.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.global.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "hami.annotations" -}}
{{- with .Values.global.annotations }}
annotations:
{{ toYaml . | indent 2 }}
{{- end }}
{{- end -}}

{{/* kube-scheduler image tag: the value, or the cluster's own version. */}}
{{- define "hami.kubeSchedulerTag" -}}
{{- if .Values.scheduler.kubeScheduler.imageTag -}}
{{- .Values.scheduler.kubeScheduler.imageTag -}}
{{- else -}}
{{- regexFind "^v[0-9]+\\.[0-9]+\\.[0-9]+" .Capabilities.KubeVersion.Version -}}
{{- end -}}
{{- end -}}

{{/* KubeSchedulerConfiguration API version for the cluster's Kubernetes version. */}}
{{- define "hami.schedulerConfigApi" -}}
{{- if semverCompare ">=1.25-0" .Capabilities.KubeVersion.Version -}}
kubescheduler.config.k8s.io/v1
{{- else -}}
kubescheduler.config.k8s.io/v1beta3
{{- end -}}
{{- end -}}

{{/* device-config.yaml, read by the extender and the device plugin. */}}
{{- define "hami.deviceConfig" -}}
nvidia:
  resourceCountName: {{ .Values.resourceName }}
  resourceMemoryName: {{ .Values.resourceMem }}
  resourceMemoryPercentageName: {{ .Values.resourceMemPercentage }}
  resourceCoreName: {{ .Values.resourceCores }}
  resourcePriorityName: {{ .Values.resourcePriority }}
  defaultMemory: {{ include "hami.int" (dict "v" .Values.scheduler.defaultMem "min" 0 "path" "scheduler.defaultMem") }}
  defaultCores: {{ include "hami.int" (dict "v" .Values.scheduler.defaultCores "min" 0 "path" "scheduler.defaultCores") }}
  defaultGPUNum: {{ include "hami.int" (dict "v" .Values.scheduler.defaultGPUNum "min" 0 "path" "scheduler.defaultGPUNum") }}
  memoryFactor: {{ include "hami.number" (dict "v" .Values.scheduler.memoryFactor "path" "scheduler.memoryFactor") }}
  deviceSplitCount: {{ include "hami.int" (dict "v" .Values.devicePlugin.deviceSplitCount "min" 1 "path" "devicePlugin.deviceSplitCount") }}
  deviceMemoryScaling: {{ include "hami.number" (dict "v" .Values.devicePlugin.deviceMemoryScaling "path" "devicePlugin.deviceMemoryScaling") }}
  deviceCoreScaling: {{ include "hami.number" (dict "v" .Values.devicePlugin.deviceCoreScaling "path" "devicePlugin.deviceCoreScaling") }}
  gpuCorePolicy: {{ include "hami.gpuCorePolicy" . }}
  libCudaLogLevel: {{ include "hami.libCudaLogLevel" . }}
  disableCoreLimit: {{ include "hami.disableCoreLimit" . }}
{{- end -}}

{{/* ---- HAMi values compatibility (docs/hami-compatibility.md, "Helm values") ----
     This chart's key wins when set; HAMi's key is the fallback; then the built-in default.
     A value of the wrong type fails the render with the key's name. */}}

{{/* An image reference. .image: HAMi's map {registry, repository, tag, pullPolicy} or this
     chart's older string form (with .tag). HAMi's own image (projecthami/hami) has none of this
     project's binaries: it stands for this project's image of the component (.own). */}}
{{- define "hami.image" -}}
{{- $img := .image -}}
{{- $global := .root.Values.global.imageRegistry | default "" -}}
{{- if kindIs "string" $img -}}
{{- /* HAMi before the map form wrote "projecthami/hami" (tag: its `version`) */ -}}
{{- if and .own (regexMatch "(^|/)projecthami/" $img) -}}
{{- printf "%s/%s:%s" ($global | default "ghcr.io") .own .root.Chart.AppVersion -}}
{{- else -}}
{{- printf "%s:%s" $img (toString (.tag | default .defaultTag | default .root.Chart.AppVersion)) -}}
{{- end -}}
{{- else if kindIs "map" $img -}}
{{- $reg := $img.registry | default "" -}}
{{- $repo := $img.repository | default "" -}}
{{- $tag := toString ($img.tag | default "") -}}
{{- if and .own (or (eq $repo "") (hasPrefix "projecthami/" $repo)) -}}
{{- $reg = "ghcr.io" -}}{{- $repo = .own -}}{{- $tag = "" -}}
{{- end -}}
{{- if $global -}}{{- $reg = $global -}}{{- end -}}
{{- if not $repo -}}{{- fail (printf "%s.repository: empty" .path) -}}{{- end -}}
{{- if not $tag -}}{{- $tag = .defaultTag | default .root.Chart.AppVersion -}}{{- end -}}
{{- if $reg -}}{{- printf "%s/%s:%s" $reg $repo $tag -}}{{- else -}}{{- printf "%s:%s" $repo $tag -}}{{- end -}}
{{- else -}}
{{- fail (printf "%s: expected a map {registry, repository, tag} or a string, got %s" .path (kindOf $img)) -}}
{{- end -}}
{{- end -}}

{{/* imagePullPolicy: the image's pullPolicy (HAMi), else the component's own imagePullPolicy
     (.own; HAMi before the image maps), else imagePullPolicy. */}}
{{- define "hami.pullPolicy" -}}
{{- $p := .root.Values.imagePullPolicy -}}
{{- with .own }}{{ $p = . }}{{ end -}}
{{- if and (kindIs "map" .image) .image.pullPolicy -}}{{- $p = .image.pullPolicy -}}{{- end -}}
{{- if not (has (toString $p) (list "Always" "IfNotPresent" "Never")) -}}
{{- fail (printf "%s.pullPolicy: %v is not Always, IfNotPresent or Never" .path $p) -}}
{{- end -}}
{{- $p -}}
{{- end -}}

{{/* imagePullSecrets of a pod: imagePullSecrets, global.imagePullSecrets and each image's
     pullSecrets (HAMi lists names; this chart takes {name: ...} entries too). */}}
{{- define "hami.pullSecrets" -}}
{{- $all := concat (.root.Values.imagePullSecrets | default list) (.root.Values.global.imagePullSecrets | default list) -}}
{{- range .images -}}
{{- if kindIs "map" . -}}{{- $all = concat $all (.pullSecrets | default list) -}}{{- end -}}
{{- end -}}
{{- $out := list -}}
{{- range $all -}}
{{- if kindIs "string" . -}}{{- $out = append $out (dict "name" .) -}}
{{- else if kindIs "map" . -}}{{- $out = append $out . -}}
{{- else -}}{{- fail (printf "imagePullSecrets: entry %v is neither a name nor {name: ...}" .) -}}
{{- end -}}
{{- end -}}
{{- with $out }}
imagePullSecrets:
{{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* A whole number: .v (ours), else .hami (HAMi's key), else .def; .path names it in errors. */}}
{{- define "hami.int" -}}
{{- $v := .v -}}
{{- if kindIs "invalid" $v -}}{{- $v = .hami -}}{{- end -}}
{{- if kindIs "invalid" $v -}}{{- $v = .def -}}{{- end -}}
{{- if not (or (kindIs "float64" $v) (kindIs "int" $v) (kindIs "int64" $v)) -}}
{{- fail (printf "%s: expected a whole number, got %s %v" .path (kindOf $v) $v) -}}
{{- end -}}
{{- if ne (float64 $v) (float64 (int $v)) -}}
{{- fail (printf "%s: expected a whole number, got %v" .path $v) -}}
{{- end -}}
{{- if and (not (kindIs "invalid" .min)) (lt (int $v) (int .min)) -}}
{{- fail (printf "%s: %v is below %v" .path $v .min) -}}
{{- end -}}
{{- int $v -}}
{{- end -}}

{{/* A positive number (scaling factors). */}}
{{- define "hami.number" -}}
{{- if not (or (kindIs "float64" .v) (kindIs "int" .v) (kindIs "int64" .v)) -}}
{{- fail (printf "%s: expected a number, got %s %v" .path (kindOf .v) .v) -}}
{{- end -}}
{{- if le (float64 .v) 0.0 -}}{{- fail (printf "%s: must be above 0, got %v" .path .v) -}}{{- end -}}
{{- .v -}}
{{- end -}}

{{/* A boolean: .v (ours), else .hami (HAMi writes some as "true"/"false" strings), else .def. */}}
{{- define "hami.bool" -}}
{{- $v := .v -}}
{{- if kindIs "invalid" $v -}}{{- $v = .hami -}}{{- end -}}
{{- if kindIs "invalid" $v -}}{{- $v = .def -}}{{- end -}}
{{- if kindIs "bool" $v -}}{{- $v -}}
{{- else if and (kindIs "string" $v) (has $v (list "true" "false")) -}}{{- $v -}}
{{- else -}}{{- fail (printf "%s: expected true or false, got %s %v" .path (kindOf $v) $v) -}}
{{- end -}}
{{- end -}}

{{- define "hami.gpuCorePolicy" -}}
{{- $p := .Values.devicePlugin.gpuCorePolicy | default (dig "nvidia" "gpuCorePolicy" "" (.Values.devices | default dict)) | default "default" -}}
{{- if not (has $p (list "default" "force" "disable")) -}}
{{- fail (printf "devicePlugin.gpuCorePolicy (HAMi: devices.nvidia.gpuCorePolicy): %v is not default, force or disable" $p) -}}
{{- end -}}
{{- $p -}}
{{- end -}}

{{- define "hami.libCudaLogLevel" -}}
{{- include "hami.int" (dict "v" .Values.devicePlugin.libCudaLogLevel "hami" (dig "nvidia" "libCudaLogLevel" nil (.Values.devices | default dict)) "def" 1 "min" 0 "path" "devicePlugin.libCudaLogLevel (HAMi: devices.nvidia.libCudaLogLevel)") -}}
{{- end -}}

{{- define "hami.disableCoreLimit" -}}
{{- include "hami.bool" (dict "v" .Values.devicePlugin.disableCoreLimit "hami" .Values.devicePlugin.disablecorelimit "def" false "path" "devicePlugin.disableCoreLimit (HAMi: devicePlugin.disablecorelimit)") -}}
{{- end -}}

{{/* config.json of per-node overrides: devicePlugin.nodeconfig (list), else HAMi's
     devicePlugin.nodeConfiguration.config (the JSON text), else none. */}}
{{- define "hami.nodeConfigJson" -}}
{{- $hami := dig "config" "" (.Values.devicePlugin.nodeConfiguration | default dict) -}}
{{- if .Values.devicePlugin.nodeconfig -}}
{{- if not (kindIs "slice" .Values.devicePlugin.nodeconfig) -}}
{{- fail (printf "devicePlugin.nodeconfig: expected a list, got %s" (kindOf .Values.devicePlugin.nodeconfig)) -}}
{{- end -}}
{{- dict "nodeconfig" .Values.devicePlugin.nodeconfig | toPrettyJson -}}
{{- else if $hami -}}
{{- if not (kindIs "string" $hami) -}}
{{- fail (printf "devicePlugin.nodeConfiguration.config: expected JSON text, got %s" (kindOf $hami)) -}}
{{- end -}}
{{- $doc := fromJson $hami -}}
{{- if hasKey $doc "Error" -}}
{{- fail (printf "devicePlugin.nodeConfiguration.config: not JSON: %s" $doc.Error) -}}
{{- end -}}
{{- if not (kindIs "slice" (get $doc "nodeconfig")) -}}
{{- fail "devicePlugin.nodeConfiguration.config: expected {\"nodeconfig\": [...]}" -}}
{{- end -}}
{{- $doc | toPrettyJson -}}
{{- else -}}
{{- dict "nodeconfig" list | toPrettyJson -}}
{{- end -}}
{{- end -}}

{{/* ConfigMap of config.json: HAMi's devicePlugin.nodeConfiguration.externalConfigName names an
     existing one (the chart then creates none). */}}
{{- define "hami.nodeConfigMap" -}}
{{- dig "externalConfigName" "" (.Values.devicePlugin.nodeConfiguration | default dict) | default (printf "%s-config" (include "hami.device-plugin" .)) -}}
{{- end -}}

{{/* klog verbosity (-v=N, --v=N) of HAMi's extraArgs for binaries without it: N >= 4 is
     --log-level=debug, lower is the default level; other arguments pass through. */}}
{{- define "hami.klogArgs" -}}
{{- $debug := false -}}
{{- range .args -}}
{{- $a := toString . -}}
{{- if regexMatch "^--?v=[0-9]+$" $a -}}
{{- if ge (int (regexFind "[0-9]+$" $a)) 4 -}}{{- $debug = true -}}{{- end -}}
{{- else }}
- {{ $a | quote }}
{{- end -}}
{{- end -}}
{{- if $debug }}
- --log-level=debug
{{- end -}}
{{- end -}}

{{/* kube-scheduler's extra arguments: HAMi's extraNewArgs (its --config is this chart's own and
     is dropped) when given, else extraArgs. */}}
{{- define "hami.kubeSchedulerArgs" -}}
{{- $ks := .Values.scheduler.kubeScheduler -}}
{{- $args := $ks.extraArgs | default list -}}
{{- if hasKey $ks "extraNewArgs" -}}{{- $args = $ks.extraNewArgs | default list -}}{{- end -}}
{{- range $args -}}
{{- if not (hasPrefix "--config=" (toString .)) }}
- {{ toString . | quote }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Port of scheduler.metricsBindAddress (HAMi's ":9395"); empty when unset. */}}
{{- define "hami.metricsPort" -}}
{{- with .Values.scheduler.metricsBindAddress -}}
{{- if not (regexMatch "^(\\[[0-9a-fA-F:.]*\\]|[^:]*):[0-9]{1,5}$" (toString .)) -}}
{{- fail (printf "scheduler.metricsBindAddress: %v is not [host]:port" .) -}}
{{- end -}}
{{- regexFind "[0-9]+$" . -}}
{{- end -}}
{{- end -}}

{{/* HAMi's monitor ctrPath and devicePlugin.libPath are <gpuHookPath>/vgpu[/containers] here:
     a different path cannot be honoured and fails rather than splitting the hook directory. */}}
{{- define "hami.checkHookPaths" -}}
{{- $vgpu := printf "%s/vgpu" .Values.global.gpuHookPath -}}
{{- with .Values.devicePlugin.libPath -}}
{{- if ne (trimSuffix "/" (toString .)) $vgpu -}}
{{- fail (printf "devicePlugin.libPath %v: this chart keeps the library in global.gpuHookPath/vgpu (%s); set global.gpuHookPath instead" . $vgpu) -}}
{{- end -}}
{{- end -}}
{{- with dig "ctrPath" "" (.Values.devicePlugin.monitor | default dict) | default .Values.devicePlugin.monitorctrPath -}}
{{- if ne (trimSuffix "/" (toString .)) (printf "%s/containers" $vgpu) -}}
{{- fail (printf "devicePlugin.monitor.ctrPath %v: this chart keeps containers in global.gpuHookPath/vgpu/containers (%s/containers); set global.gpuHookPath instead" . $vgpu) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* HAMi's device-config.content: a whole device-config.yaml given as text. When set it is the
     file, and the components get none of the flags that would override its settings. */}}
{{- define "hami.deviceConfigContent" -}}
{{- $c := dig "content" "" (index .Values "device-config" | default dict) -}}
{{- if not (kindIs "string" $c) -}}
{{- fail (printf "device-config.content: expected the text of a device-config.yaml, got %s" (kindOf $c)) -}}
{{- end -}}
{{- $c -}}
{{- end -}}

{{- define "hami.deviceConfigText" -}}
{{- include "hami.deviceConfigContent" . | default (include "hami.deviceConfig" .) -}}
{{- end -}}

{{/* Extra env entries (HAMi's extraEnvs): a list of env entries, or a map NAME: value. */}}
{{- define "hami.extraEnvs" -}}
{{- if kindIs "slice" .env -}}
{{- with .env }}{{ toYaml . }}{{ end -}}
{{- else if kindIs "map" .env -}}
{{- range $k, $v := .env }}
- name: {{ $k }}
  value: {{ toString $v | quote }}
{{- end -}}
{{- else if not (kindIs "invalid" .env) -}}
{{- fail (printf "%s: expected a list of env entries or a map, got %s" .path (kindOf .env)) -}}
{{- end -}}
{{- end -}}

{{/* Names that must be non-empty strings (a list or a number here would render nonsense). */}}
{{- define "hami.checkNames" -}}
{{- range $k := list "schedulerName" "resourceName" "resourceMem" "resourceMemPercentage" "resourceCores" "resourcePriority" -}}
{{- $v := index $.Values $k -}}
{{- if not (and (kindIs "string" $v) $v) -}}
{{- fail (printf "%s: expected a non-empty name, got %s %v" $k (kindOf $v) $v) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Default policies. HAMi's gpuSchedulerPolicy topology-aware (NVLink pair scores) has no
     counterpart here: GPUs are then placed by spread, HAMi's default (NOTES.txt says so). */}}
{{- define "hami.nodePolicy" -}}
{{- $p := .Values.scheduler.defaultSchedulerPolicy.nodeSchedulerPolicy -}}
{{- if not (has $p (list "binpack" "spread")) -}}
{{- fail (printf "scheduler.defaultSchedulerPolicy.nodeSchedulerPolicy: %v is not binpack or spread" $p) -}}
{{- end -}}
{{- $p -}}
{{- end -}}

{{- define "hami.gpuPolicy" -}}
{{- $p := .Values.scheduler.defaultSchedulerPolicy.gpuSchedulerPolicy -}}
{{- if not (has $p (list "binpack" "spread" "topology-aware")) -}}
{{- fail (printf "scheduler.defaultSchedulerPolicy.gpuSchedulerPolicy: %v is not binpack, spread or topology-aware" $p) -}}
{{- end -}}
{{- ternary "spread" $p (eq $p "topology-aware") -}}
{{- end -}}

{{/* The node register annotation's form: json (HAMi v2.8+ schedulers) or text (<= v2.7). */}}
{{- define "hami.registerFormat" -}}
{{- $f := .Values.devicePlugin.registerFormat | default "json" -}}
{{- if not (has $f (list "json" "text")) -}}
{{- fail (printf "devicePlugin.registerFormat: %v is not json or text" $f) -}}
{{- end -}}
{{- $f -}}
{{- end -}}

{{/* Scheduler replicas: scheduler.replicas with leader election, else 1 (two kube-schedulers
     without an elected leader would both bind pods), as in HAMi's chart. */}}
{{- define "hami.schedulerReplicas" -}}
{{- $n := include "hami.int" (dict "v" .Values.scheduler.replicas "min" 1 "path" "scheduler.replicas") -}}
{{- if eq (include "hami.bool" (dict "v" .Values.scheduler.leaderElect "def" false "path" "scheduler.leaderElect")) "true" -}}
{{- $n -}}
{{- else -}}
1
{{- end -}}
{{- end -}}
