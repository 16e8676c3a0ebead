{{/* Chart name, overridable. */}}
{{- define "mp-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects: <release>-mp-gateway, or the release name when it already contains the chart name. */}}
{{- define "mp-gateway.fullname" -}}
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

{{/* Selector labels; "component" tells the gateway from the trial Redis. Call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "mp-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mp-gateway.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of every object. Call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "mp-gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "mp-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: mp-gateway
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{- define "mp-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mp-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The gateway image: repository@digest, else repository:tag (tag defaults to appVersion). */}}
{{- define "mp-gateway.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret holding MP_ACCESS_KEY, MP_SECRET_KEY, CALLBACK_TOKEN, GRPC_AUTH_TOKENS, REDIS_URL. */}}
{{- define "mp-gateway.secretName" -}}
{{- default (include "mp-gateway.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "mp-gateway.redisName" -}}
{{- printf "%s-redis" (include "mp-gateway.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "true" when more than one gateway pod may run (fixed replicas > 1, or an autoscaler). */}}
{{- define "mp-gateway.multiReplica" -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{/* grpc or http: native gRPC probes need plaintext gRPC (the kubelet speaks no TLS to them). */}}
{{- define "mp-gateway.probeType" -}}
{{- if eq .Values.probes.type "auto" }}
{{- if .Values.tls.enabled }}http{{ else }}grpc{{ end }}
{{- else }}
{{- .Values.probes.type }}
{{- end }}
{{- end }}

{{/* PUBLIC_CALLBACK_URL: config.publicCallbackUrl, else derived from the Ingress host. */}}
{{- define "mp-gateway.publicCallbackUrl" -}}
{{- if .Values.config.publicCallbackUrl }}
{{- .Values.config.publicCallbackUrl }}
{{- else if and .Values.ingress.enabled .Values.ingress.host }}
{{- printf "%s://%s%s" (ternary "https" "http" (gt (len .Values.ingress.tls) 0)) .Values.ingress.host .Values.callbackPath }}
{{- end }}
{{- end }}

{{/* Seconds Kubernetes waits after starting termination before SIGKILL: the preStop pause, the gateway's own grace, and a margin. */}}
{{- define "mp-gateway.terminationGracePeriodSeconds" -}}
{{- $needed := add (int .Values.lifecycle.preStopSleepSeconds) (int .Values.config.shutdownGraceSecs) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $needed 5 }}
{{- else }}
{{- int .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* Combinations the schema cannot express; each failure says what to set. */}}
{{- define "mp-gateway.validate" -}}
{{- $v := .Values }}
{{- if not $v.config.sandbox }}
{{- if not $v.config.mpBaseUrl }}
{{- fail "config.mpBaseUrl (MP_BASE_URL) is required unless config.sandbox=true" }}
{{- end }}
{{- if and (not $v.secrets.existingSecret) (not (and $v.secrets.mpAccessKey $v.secrets.mpSecretKey)) }}
{{- fail "secrets.mpAccessKey and secrets.mpSecretKey (or secrets.existingSecret) are required unless config.sandbox=true" }}
{{- end }}
{{- end }}
{{- if and $v.secrets.existingSecret (or $v.secrets.mpAccessKey $v.secrets.mpSecretKey $v.secrets.callbackToken $v.secrets.grpcAuthTokens $v.redis.url) }}
{{- fail "secrets.existingSecret is set: put MP_ACCESS_KEY, MP_SECRET_KEY, CALLBACK_TOKEN, GRPC_AUTH_TOKENS and REDIS_URL in that Secret, not in secrets.* or redis.url" }}
{{- end }}
{{- if and (eq (toString $v.config.grpcAuth) "off") $v.secrets.grpcAuthTokens }}
{{- fail "config.grpcAuth is off but secrets.grpcAuthTokens is set: the gateway refuses both (GRPC_AUTH=off with GRPC_AUTH_TOKENS); drop one" }}
{{- end }}
{{- $redisWays := 0 }}
{{- range (list $v.redis.url $v.redis.sentinel.addresses $v.redis.cluster.nodes $v.redis.internal.enabled) }}
{{- if . }}{{ $redisWays = add1 $redisWays }}{{ end }}
{{- end }}
{{- if gt $redisWays 1 }}
{{- fail "redis.url, redis.sentinel.addresses, redis.cluster.nodes and redis.internal.enabled are exclusive: name one Redis (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES), or the trial one" }}
{{- end }}
{{- if and $v.redis.sentinel.addresses (not $v.redis.sentinel.masterName) }}
{{- fail "redis.sentinel.addresses needs redis.sentinel.masterName (REDIS_SENTINEL_MASTER: the name the sentinels monitor the primary under)" }}
{{- end }}
{{- if and (or $v.redis.passwordSecret.passwordKey $v.redis.passwordSecret.sentinelPasswordKey) (not $v.redis.passwordSecret.name) }}
{{- fail "redis.passwordSecret.passwordKey/sentinelPasswordKey need redis.passwordSecret.name (your Secret holding them)" }}
{{- end }}
{{- if and $v.redis.passwordSecret.name (not (or $v.redis.sentinel.addresses $v.redis.cluster.nodes)) }}
{{- fail "redis.passwordSecret is for redis.sentinel or redis.cluster; with redis.url put the password in the URL" }}
{{- end }}
{{- if include "mp-gateway.multiReplica" . }}
{{- if $v.config.sandbox }}
{{- fail "config.sandbox=true keeps its simulated MP inside each pod: run one replica (replicaCount=1, autoscaling.enabled=false)" }}
{{- end }}
{{- if not (or $v.redis.url $v.redis.sentinel.addresses $v.redis.cluster.nodes $v.redis.internal.enabled $v.secrets.existingSecret) }}
{{- fail "more than one replica needs Redis (idempotency and alarms are shared through it): set redis.url, redis.sentinel or redis.cluster, put REDIS_URL in secrets.existingSecret, or set redis.internal.enabled=true for a trial" }}
{{- end }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- if and $v.tls.enabled (not $v.tls.secretName) }}
{{- fail "tls.enabled needs tls.secretName (a Secret with tls.crt and tls.key)" }}
{{- end }}
{{- if and $v.tls.clientCa.enabled (not $v.tls.enabled) }}
{{- fail "tls.clientCa.enabled (mTLS) needs tls.enabled" }}
{{- end }}
{{- if and $v.tls.enabled (eq $v.probes.type "grpc") }}
{{- fail "probes.type=grpc cannot probe a TLS gRPC port (the kubelet's gRPC probe is plaintext): use probes.type=http or auto" }}
{{- end }}
{{- if and (gt (int $v.lifecycle.preStopSleepSeconds) 0) (not (semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version)) }}
{{- fail (printf "the preStop sleep action needs Kubernetes 1.30 (this is %s): upgrade, or set lifecycle.preStopSleepSeconds=0" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- $needed := add (int $v.lifecycle.preStopSleepSeconds) (int $v.config.shutdownGraceSecs) }}
{{- if le (int (include "mp-gateway.terminationGracePeriodSeconds" .)) $needed }}
{{- fail (printf "terminationGracePeriodSeconds must exceed lifecycle.preStopSleepSeconds + config.shutdownGraceSecs (%d)" $needed) }}
{{- end }}
{{- if and $v.httpRoute.enabled (not $v.httpRoute.parentRefs) }}
{{- fail "httpRoute.enabled needs httpRoute.parentRefs (the Gateway to attach to)" }}
{{- end }}
{{- end }}

{{/* The chart-created Secret's entries (env name: value), set ones only, as YAML. */}}
{{- define "mp-gateway.secretData" -}}
{{- $s := .Values.secrets }}
{{- $data := dict }}
{{- if $s.mpAccessKey }}{{ $_ := set $data "MP_ACCESS_KEY" $s.mpAccessKey }}{{ end }}
{{- if $s.mpSecretKey }}{{ $_ := set $data "MP_SECRET_KEY" $s.mpSecretKey }}{{ end }}
{{- if $s.callbackToken }}{{ $_ := set $data "CALLBACK_TOKEN" $s.callbackToken }}{{ end }}
{{- if $s.grpcAuthTokens }}{{ $_ := set $data "GRPC_AUTH_TOKENS" (join "," $s.grpcAuthTokens) }}{{ end }}
{{- if .Values.redis.url }}{{ $_ := set $data "REDIS_URL" .Values.redis.url }}{{ end }}
{{- if $data }}{{ toYaml $data }}{{ end }}
{{- end }}

{{/* The secret env entries: from the chart's Secret only the keys it holds; from
an existing Secret every key, optional except the MP keys outside the sandbox. */}}
{{- define "mp-gateway.secretEnv" -}}
{{- $name := include "mp-gateway.secretName" . }}
{{- $env := list }}
{{- $vars := list
      (list "MP_ACCESS_KEY" "mpAccessKey" (not .Values.config.sandbox))
      (list "MP_SECRET_KEY" "mpSecretKey" (not .Values.config.sandbox))
      (list "CALLBACK_TOKEN" "callbackToken" false)
      (list "GRPC_AUTH_TOKENS" "grpcAuthTokens" false) }}
{{- if not (or .Values.redis.internal.enabled .Values.redis.sentinel.addresses .Values.redis.cluster.nodes) }}
{{- $vars = append $vars (list "REDIS_URL" "redisUrl" false) }}
{{- end }}
{{- if .Values.secrets.existingSecret }}
{{- range $vars }}
{{- $key := index $.Values.secrets.existingSecretKeys (index . 1) }}
{{- $env = append $env (dict "name" (index . 0) "valueFrom" (dict "secretKeyRef" (dict "name" $name "key" $key "optional" (not (index . 2))))) }}
{{- end }}
{{- else }}
{{- $data := include "mp-gateway.secretData" . | fromYaml }}
{{- range $vars }}
{{- if hasKey $data (index . 0) }}
{{- $env = append $env (dict "name" (index . 0) "valueFrom" (dict "secretKeyRef" (dict "name" $name "key" (index . 0)))) }}
{{- end }}
{{- end }}
{{- end }}
{{- if $env }}{{ toYaml $env }}{{ end }}
{{- end }}

{{/* A setting as the env string: whole numbers without exponent or decimals (values.yaml numbers arrive as float64). */}}
{{- define "mp-gateway.envString" -}}
{{- if or (kindIs "float64" .) (kindIs "int64" .) (kindIs "int" .) }}
{{- if eq (float64 .) (floor .) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/* A probe's action: the gRPC health service on the gRPC port, or an HTTP path on the HTTP port. */}}
{{- define "mp-gateway.probeAction" -}}
{{- if eq .type "grpc" }}
grpc:
  port: {{ .ctx.Values.ports.grpc }}
{{- else }}
httpGet:
  path: {{ .path }}
  port: http
{{- end }}
{{- end }}

{{/* REDIS_PASSWORD and REDIS_SENTINEL_PASSWORD from redis.passwordSecret, the keys that are named. */}}
{{- define "mp-gateway.redisPasswordEnv" -}}
{{- $p := .Values.redis.passwordSecret }}
{{- $env := list }}
{{- if $p.name }}
{{- range (list (list "REDIS_PASSWORD" $p.passwordKey) (list "REDIS_SENTINEL_PASSWORD" $p.sentinelPasswordKey)) }}
{{- if index . 1 }}
{{- $env = append $env (dict "name" (index . 0) "valueFrom" (dict "secretKeyRef" (dict "name" $p.name "key" (index . 1)))) }}
{{- end }}
{{- end }}
{{- end }}
{{- if $env }}{{ toYaml $env }}{{ end }}
{{- end }}
