{{/*
Named templates of the modelmon chart.

For your own model pods (see README.md, "Sidecar in your pods"):
  modelmon.sidecarContainer   the sidecar container (one list item of `containers:`)
  modelmon.sidecarVolumes     the volumes it mounts (list items of `volumes:`)
  modelmon.sidecarPodLabels   the pod labels the chart's PodMonitor selects
  modelmon.baselinesChecksum  a checksum of the baselines, for a pod annotation
Each takes this chart's context (`.Subcharts.modelmon` in a parent chart, `.` inside this
chart) or a dict `(dict "context" <that context> "values" <overrides of sidecarContainer>)`.
*/}}

{{/* Chart name. */}}
{{- define "modelmon.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart>, or the release name when it contains the chart name. */}}
{{- define "modelmon.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of a component's objects: <fullname>-<suffix>, at most 63 characters. */}}
{{- define "modelmon.componentName" -}}
{{- printf "%s-%s" (include "modelmon.fullname" .context | trunc (int (sub 62 (len .suffix))) | trimSuffix "-") .suffix }}
{{- end }}

{{/* Chart label value. */}}
{{- define "modelmon.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "modelmon.labels" -}}
helm.sh/chart: {{ include "modelmon.chart" . }}
{{ include "modelmon.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelmon
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of the release (add app.kubernetes.io/component per workload). */}}
{{- define "modelmon.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelmon.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels and selector labels of a component: (dict "context" $ "component" "drift-exporter"). */}}
{{- define "modelmon.componentLabels" -}}
{{ include "modelmon.labels" .context }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- define "modelmon.componentSelectorLabels" -}}
{{ include "modelmon.selectorLabels" .context }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* ServiceAccount of the pods. */}}
{{- define "modelmon.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelmon.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image: repository@digest, or repository:tag (tag defaults to the appVersion). */}}
{{- define "modelmon.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{/* Name of the baselines ConfigMap. */}}
{{- define "modelmon.baselinesConfigMap" -}}
{{- include "modelmon.componentName" (dict "context" . "suffix" "baselines") }}
{{- end }}

{{/*
Baseline names a workload serves: (dict "context" $ "names" <list> "where" <values path>
"external" <bool>). Empty names: every key of `baselines`. Unless `external` (a ConfigMap of
the user's), each name must be a key of `baselines`.
*/}}
{{- define "modelmon.baselineNames" -}}
{{- $all := keys .context.Values.baselines | sortAlpha }}
{{- $names := .names | default $all }}
{{- if not .external }}
{{- range $names }}
{{- if not (has . $all) }}
{{- fail (printf "%s: baseline %q is not a key of baselines (have: %s)" $.where . (join ", " $all)) }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $names }}
{{- end }}

{{/* A probe: the HTTP GET on `path` plus the timings of `probe`. */}}
{{- define "modelmon.probe" -}}
httpGet:
  path: {{ .path }}
  port: {{ .port }}
  scheme: {{ ternary "HTTPS" "HTTP" (.tls | default false) }}
{{- with .probe }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The settings of a sidecar container as JSON {"v": <settings>}: the chart's
`sidecarContainer`, each top-level key replaced by the one in `values` when the argument is
(dict "context" <chart context> "values" <map>). The standalone sidecar passes `sidecar`.
*/}}
{{- define "modelmon.sidecarSettings" -}}
{{- $ctx := . }}
{{- $over := dict }}
{{- if and (kindIs "map" .) (hasKey . "context") }}
{{- $ctx = .context }}
{{- $over = .values | default dict }}
{{- end }}
{{- $v := deepCopy $ctx.Values.sidecarContainer }}
{{- range $k, $x := $over }}
{{- $_ := set $v $k $x }}
{{- end }}
{{- toJson (dict "v" $v) }}
{{- end }}

{{/*
The sidecar container: one item of a pod's `containers:` list (or, on Kubernetes 1.29+, of
`initContainers:` with `restartPolicy: Always` added, as a native sidecar).

  containers:
    - name: model
      ...
    {{- include "modelmon.sidecarContainer" .Subcharts.modelmon | nindent 4 }}
*/}}
{{- define "modelmon.sidecarContainer" -}}
{{- $ctx := . }}
{{- $where := "sidecarContainer" }}
{{- if and (kindIs "map" .) (hasKey . "context") }}{{ $ctx = .context }}{{ $where = .where | default $where }}{{ end }}
{{- $v := (include "modelmon.sidecarSettings" . | fromJson).v }}
{{- $names := include "modelmon.baselineNames" (dict "context" $ctx "names" $v.baselines "where" (printf "%s.baselines" $where) "external" (not (empty $v.baselinesConfigMap))) | fromJsonArray }}
{{- if not $names }}
{{- fail "the modelmon sidecar needs at least one baseline: set baselines.<name> (--set-file baselines.loan=loan-baseline.yaml)" }}
{{- end -}}
- name: {{ $v.name | default "modelmon" }}
  image: {{ include "modelmon.image" $ctx | quote }}
  imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
  args:
    - sidecar
    - {{ printf "--listen=0.0.0.0:%v" $v.port | quote }}
    {{- range $names }}
    - {{ printf "--baseline=/etc/modelmon/baselines/%s.yaml" . | quote }}
    {{- end }}
    - {{ printf "--shutdown-delay=%v" $v.shutdownDelay | quote }}
    {{- if not $v.joinStoreSecret.name }}
    - {{ printf "--join-store=%s" $v.joinStore | quote }}
    {{- end }}
    {{- if $v.webConfig.existingSecret }}
    - {{ printf "--web.config.file=/etc/modelmon/web/%s" $v.webConfig.key | quote }}
    {{- end }}
    {{- range $v.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  {{- if or $v.joinStoreSecret.name $v.extraEnv }}
  env:
    {{- if $v.joinStoreSecret.name }}
    - name: MODELMON_JOIN_STORE
      valueFrom:
        secretKeyRef:
          name: {{ $v.joinStoreSecret.name }}
          key: {{ $v.joinStoreSecret.key }}
    {{- end }}
    {{- with $v.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  ports:
    - name: {{ $v.portName }}
      containerPort: {{ $v.port }}
      protocol: TCP
  livenessProbe:
    {{- include "modelmon.probe" (dict "path" "/-/healthy" "port" $v.portName "tls" $v.webConfig.tls "probe" $v.livenessProbe) | nindent 4 }}
  readinessProbe:
    {{- include "modelmon.probe" (dict "path" "/-/ready" "port" $v.portName "tls" $v.webConfig.tls "probe" $v.readinessProbe) | nindent 4 }}
  {{- with $v.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $ctx.Values.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: modelmon-baselines
      mountPath: /etc/modelmon/baselines
      readOnly: true
    - name: modelmon-join-store
      mountPath: /var/lib/modelmon
    {{- if $v.webConfig.existingSecret }}
    - name: modelmon-web-config
      mountPath: /etc/modelmon/web
      readOnly: true
    {{- end }}
    {{- with $v.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/*
The volumes of the sidecar container: items of the pod's `volumes:` list.

  volumes:
    {{- include "modelmon.sidecarVolumes" .Subcharts.modelmon | nindent 4 }}
*/}}
{{- define "modelmon.sidecarVolumes" -}}
{{- $ctx := . }}
{{- $where := "sidecarContainer" }}
{{- if and (kindIs "map" .) (hasKey . "context") }}{{ $ctx = .context }}{{ $where = .where | default $where }}{{ end }}
{{- $v := (include "modelmon.sidecarSettings" . | fromJson).v }}
{{- $names := include "modelmon.baselineNames" (dict "context" $ctx "names" $v.baselines "where" (printf "%s.baselines" $where) "external" (not (empty $v.baselinesConfigMap))) | fromJsonArray -}}
- name: modelmon-baselines
  configMap:
    name: {{ $v.baselinesConfigMap | default (include "modelmon.baselinesConfigMap" $ctx) }}
    items:
      {{- range $names }}
      - key: {{ . }}.yaml
        path: {{ . }}.yaml
      {{- end }}
- name: modelmon-join-store
  emptyDir:
    sizeLimit: {{ $v.joinStoreSizeLimit }}
{{- if $v.webConfig.existingSecret }}
- name: modelmon-web-config
  secret:
    secretName: {{ $v.webConfig.existingSecret }}
{{- end }}
{{- end }}

{{/* Pod labels that the chart's PodMonitor selects (its `podMonitor.selector.matchLabels`). */}}
{{- define "modelmon.sidecarPodLabels" -}}
{{- $ctx := . }}
{{- if and (kindIs "map" .) (hasKey . "context") }}{{ $ctx = .context }}{{ end }}
{{- toYaml ($ctx.Values.podMonitor.selector.matchLabels | default dict) }}
{{- end }}

{{/*
A checksum of the baseline files, for a pod annotation that restarts the model pods when a
baseline changes (the sidecar reads its baselines at start):
  checksum/modelmon-baselines: {{ include "modelmon.baselinesChecksum" .Subcharts.modelmon }}
*/}}
{{- define "modelmon.baselinesChecksum" -}}
{{- $ctx := . }}
{{- if and (kindIs "map" .) (hasKey . "context") }}{{ $ctx = .context }}{{ end }}
{{- toJson $ctx.Values.baselines | sha256sum }}
{{- end }}

{{/* Exporter: is the store Secret created by the chart? */}}
{{- define "modelmon.exporter.createSecret" -}}
{{- $e := .Values.exporter }}
{{- if and $e.enabled (eq $e.mode "query") (not $e.store.auth.existingSecret.name) (or $e.store.auth.bearerToken $e.store.auth.password) }}true{{ end }}
{{- end }}

{{/* Exporter: name of the Secret with the store credentials ("" when there is none). */}}
{{- define "modelmon.exporter.secretName" -}}
{{- $a := .Values.exporter.store.auth }}
{{- if $a.existingSecret.name }}
{{- $a.existingSecret.name }}
{{- else if include "modelmon.exporter.createSecret" . }}
{{- include "modelmon.componentName" (dict "context" . "suffix" "store-auth") }}
{{- end }}
{{- end }}

{{/* Exporter: credentials as {token: key, password: key, userKey: key, user: name}; fails on bad combinations. */}}
{{- define "modelmon.exporter.auth" -}}
{{- $a := .Values.exporter.store.auth }}
{{- $x := $a.existingSecret }}
{{- $r := dict }}
{{- if $x.name }}
{{- if or $a.bearerToken $a.password }}
{{- fail "exporter.store.auth: give the credentials either in bearerToken/password or in existingSecret, not both" }}
{{- end }}
{{- if $x.bearerTokenKey }}{{ $_ := set $r "token" $x.bearerTokenKey }}{{ end }}
{{- if $x.passwordKey }}{{ $_ := set $r "password" $x.passwordKey }}{{ end }}
{{- if $x.usernameKey }}{{ $_ := set $r "userKey" $x.usernameKey }}{{ end }}
{{- else }}
{{- if $a.bearerToken }}{{ $_ := set $r "token" "bearer-token" }}{{ end }}
{{- if $a.password }}{{ $_ := set $r "password" "basic-auth-password" }}{{ end }}
{{- end }}
{{- if $a.username }}{{ $_ := set $r "user" $a.username }}{{ end }}
{{- if and $r.token (or $r.password $r.user $r.userKey) }}
{{- fail "exporter.store.auth: use a bearer token or basic auth, not both" }}
{{- end }}
{{- if and $r.password (not (or $r.user $r.userKey)) }}
{{- fail "exporter.store.auth: a basic auth password needs a user (auth.username or existingSecret.usernameKey)" }}
{{- end }}
{{- if and (or $r.user $r.userKey) (not $r.password) }}
{{- fail "exporter.store.auth: a basic auth user needs a password (auth.password or existingSecret.passwordKey)" }}
{{- end }}
{{- if and $r.user $r.userKey }}
{{- fail "exporter.store.auth: give the basic auth user in username or in existingSecret.usernameKey, not both" }}
{{- end }}
{{- if and $x.urlKey (not $x.name) }}
{{- fail "exporter.store.auth.existingSecret.urlKey needs existingSecret.name" }}
{{- end }}
{{- toJson $r }}
{{- end }}

{{/* Exporter: the scrape-mode URLs. */}}
{{- define "modelmon.exporter.scrapeUrls" -}}
{{- $urls := .Values.exporter.scrape.urls }}
{{- if and (not $urls) .Values.sidecar.enabled }}
{{- if gt (int .Values.sidecar.replicaCount) 1 }}
{{- fail "exporter.mode=scrape reads the standalone sidecar through its Service, which spreads scrapes over replicas: set sidecar.replicaCount to 1, list every replica in exporter.scrape.urls, or use exporter.mode=query" }}
{{- end }}
{{- $urls = list (printf "%s://%s.%s.svc:%v/metrics" (ternary "https" "http" .Values.sidecar.webConfig.tls) (include "modelmon.componentName" (dict "context" . "suffix" "sidecar")) .Release.Namespace .Values.sidecar.service.port) }}
{{- end }}
{{- if not $urls }}
{{- fail "exporter.mode=scrape needs exporter.scrape.urls (the /metrics URLs of the model replicas) or sidecar.enabled=true" }}
{{- end }}
{{- toJson $urls }}
{{- end }}

{{/*
Exporter: the text of its `--config` file (docs/drift.md, "The config file") from
exporter.driftConfig; "" when nothing is set or the exporter is disabled. Scrape mode uses
only the verdict (top level and per model): like `modelmon drift`, this fails on the
query-mode keys there. The ConfigMap, the exporter's flag, mount and checksum all follow it.
*/}}
{{- define "modelmon.exporter.driftConfig" -}}
{{- $dc := .Values.exporter.driftConfig }}
{{- if .Values.exporter.enabled }}
{{- if ne .Values.exporter.mode "query" }}
{{- $only := "only used in query mode (exporter.mode=query); scrape mode takes exporter.driftConfig.verdict and exporter.driftConfig.models.<name>.verdict" }}
{{- if $dc.methods }}
{{- fail (printf "exporter.driftConfig.methods: %s" $only) }}
{{- end }}
{{- range $name, $m := $dc.models }}
{{- range $k := list "window" "min_samples" "methods" }}
{{- if and (kindIs "map" $m) (hasKey $m $k) }}
{{- fail (printf "exporter.driftConfig.models.%s.%s: %s" $name $k $only) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- $doc := dict }}
{{- with $dc.verdict }}{{ $_ := set $doc "verdict" . }}{{ end }}
{{- with $dc.methods }}{{ $_ := set $doc "methods" . }}{{ end }}
{{- with $dc.models }}{{ $_ := set $doc "models" . }}{{ end }}
{{- with $doc }}
{{- /* Go writes 1e-05 for 0.00001, which YAML 1.1 readers (PyYAML, the exporter's) take for
  a string: give such numbers a decimal point, 1.0e-05. */}}
{{- regexReplaceAll "(?m)^( *(?:- |[^ :#][^:#]*: )-?[0-9]+)(e[-+][0-9]+)$" (toYaml .) "${1}.0${2}" }}
{{- end }}
{{- end }}
{{- end }}
