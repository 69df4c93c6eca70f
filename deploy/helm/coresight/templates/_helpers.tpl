{{/*
Names, labels, and the arithmetic the worker pod's sizing needs. Every
value-derived refusal of the chart is a `fail` here or in
"coresight.validate", so `helm template` and `helm install` both stop with
the message before anything reaches the cluster.
*/}}

{{- define "coresight.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "coresight.fullname" -}}
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

{{- define "coresight.worker.fullname" -}}
{{- printf "%s-worker" (include "coresight.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "coresight.api.fullname" -}}
{{- printf "%s-api" (include "coresight.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "coresight.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "coresight.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "coresight.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "coresight.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: coresight
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "worker") */}}
{{- define "coresight.selectorLabels" -}}
app.kubernetes.io/name: {{ include "coresight.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "coresight.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
A size in bytes from a number or a Kubernetes-style quantity ("16Gi",
"512Mi", "2G", "1000"); decimal fractions are refused. Prints the integer.
*/}}
{{- define "coresight.bytes" -}}
{{- $v := . -}}
{{- if kindIs "string" $v -}}
{{- $digits := regexFind "^[0-9]+" $v -}}
{{- $unit := trimPrefix $digits $v -}}
{{- $units := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 -}}
{{- if or (eq $digits "") (not (hasKey $units $unit)) -}}
{{- fail (printf "%q is not a size: use bytes or a quantity such as 512Mi, 16Gi" $v) -}}
{{- end -}}
{{- mul (int64 $digits) (get $units $unit) -}}
{{- else -}}
{{- int64 $v -}}
{{- end -}}
{{- end }}

{{/* Bytes as a quantity in Mi, rounded up: "37376Mi". */}}
{{- define "coresight.mebibytes" -}}
{{- $b := int64 . -}}
{{- printf "%dMi" (div (add $b 1048575) 1048576) -}}
{{- end }}

{{/*
The worker pod's storage, as a dict of byte counts:
  workDir   = concurrency x maxDumpSize + symbols.cacheMaxSize + workDirHeadroom
  tmp       = concurrency x gdb.maxOutputSize + tmpHeadroom
  ephemeral = workDir + tmp + logHeadroom   (request = limit: the scheduler
              places the pod only where all of it fits)
*/}}
{{- define "coresight.worker.storage" -}}
{{- $w := .Values.worker -}}
{{- $n := int64 $w.concurrency -}}
{{- $dump := include "coresight.bytes" $w.maxDumpSize | int64 -}}
{{- $cache := include "coresight.bytes" .Values.symbols.cacheMaxSize | int64 -}}
{{- $gdbOut := include "coresight.bytes" .Values.gdb.maxOutputSize | int64 -}}
{{- $gdbIndex := include "coresight.bytes" .Values.gdb.indexCacheMaxSize | int64 -}}
{{- $imageCache := 0 -}}
{{- if .Values.symbols.image.enabled }}{{ $imageCache = include "coresight.bytes" .Values.symbols.image.cacheMaxSize | int64 }}{{ end -}}
{{- $workDir := add (mul $n $dump) $cache $imageCache $gdbIndex (include "coresight.bytes" $w.workDirHeadroom | int64) -}}
{{- $tmp := add (mul $n $gdbOut) (include "coresight.bytes" $w.tmpHeadroom | int64) -}}
{{- $ephemeral := add $workDir $tmp (include "coresight.bytes" $w.logHeadroom | int64) -}}
{{- $limit := include "coresight.bytes" $w.ephemeralStorageLimit | int64 -}}
{{- toJson (dict "dump" $dump "cache" $cache "imageCache" $imageCache "gdbOut" $gdbOut "gdbIndex" $gdbIndex "workDir" $workDir "tmp" $tmp "ephemeral" $ephemeral "limit" $limit) -}}
{{- end }}

{{/*
CORESIGHT_API_URL the worker is given: results.apiUrl, else the API Service
of this release when api.enabled; "" when the http sink is off.
*/}}
{{- define "coresight.apiUrl" -}}
{{- if has "http" .Values.results.sinks -}}
{{- if .Values.results.apiUrl -}}
{{- .Values.results.apiUrl -}}
{{- else if .Values.api.enabled -}}
{{- printf "http://%s.%s.svc:%d" (include "coresight.api.fullname" .) .Release.Namespace (int64 .Values.api.port) -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/* The refusals: values that would render a pool that cannot work. */}}
{{- define "coresight.validate" -}}
{{- $v := .Values -}}
{{- if and $v.autoscaling.keda.enabled $v.autoscaling.hpa.enabled -}}
{{- fail "autoscaling.keda.enabled and autoscaling.hpa.enabled are both true: enable at most one autoscaler (two would fight over the worker Deployment's replicas)" -}}
{{- end -}}
{{- if and (has "http" $v.results.sinks) (not (include "coresight.apiUrl" .)) -}}
{{- fail "results.apiUrl (CORESIGHT_API_URL) is required when results.sinks includes http (or api.enabled, to use this release's API)" -}}
{{- end -}}
{{- if and (has "file" $v.results.sinks) (not $v.results.allowPodLocalFileSink) -}}
{{- fail "results.sinks includes file: results would be written inside the pod and lost with it; use http or nats (or set results.allowPodLocalFileSink=true to debug)" -}}
{{- end -}}
{{- $s := include "coresight.worker.storage" . | fromJson -}}
{{- if gt (int64 $s.ephemeral) (int64 $s.limit) -}}
{{- fail (printf "worker storage does not fit worker.ephemeralStorageLimit (%s): worker.concurrency %d x worker.maxDumpSize %s + symbols.cacheMaxSize %s + symbols.image.cacheMaxSize (when enabled) + gdb.indexCacheMaxSize + headroom needs %s (work dir %s, /tmp %s, logs); lower worker.concurrency or worker.maxDumpSize, or raise worker.ephemeralStorageLimit" (toString $v.worker.ephemeralStorageLimit) (int64 $v.worker.concurrency) (toString $v.worker.maxDumpSize) (toString $v.symbols.cacheMaxSize) (include "coresight.mebibytes" $s.ephemeral) (include "coresight.mebibytes" $s.workDir) (include "coresight.mebibytes" $s.tmp)) -}}
{{- end -}}
{{- if and (hasPrefix "s3://" $v.symbols.store) (not $v.s3.credentials.secretName) -}}
{{- fail "symbols.store is an s3:// store: it needs s3.credentials.secretName (the worker refuses to start without S3 credentials)" -}}
{{- end -}}
{{- if $v.api.enabled -}}
{{- if not $v.api.databaseUrl.secretKeyRef.name -}}
{{- fail "api.enabled needs api.databaseUrl.secretKeyRef.name (a Secret holding the PostgreSQL DATABASE_URL)" -}}
{{- end -}}
{{- end -}}
{{- end }}
