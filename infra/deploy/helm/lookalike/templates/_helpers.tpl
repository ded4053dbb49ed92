{{/* Names and labels: one scheme for every object, so selectors and policies can rely on it. */}}
{{- define "lookalike.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lookalike.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "lookalike.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "lookalike.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<component>", cut to the 63 characters a Service or label value allows. */}}
{{- define "lookalike.component" -}}
{{- printf "%s-%s" (include "lookalike.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lookalike.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lookalike.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "lookalike.labels" -}}
{{ include "lookalike.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "lookalike.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "lookalike.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "lookalike.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
A secretKeyRef. secretValues.<inline> set: the chart's own Secret, key <inline>. Otherwise the
Secret <secret> the operator made, key <key>; at install its value is looked up and a "change-me"
placeholder stops the install (helm template sees no cluster: lookup is empty there).
*/}}
{{- define "lookalike.secretKeyRef" -}}
{{- $root := .root -}}
{{- if index $root.Values.secretValues .inline -}}
secretKeyRef: {name: {{ include "lookalike.fullname" $root }}, key: {{ .inline }}}
{{- else -}}
{{- $name := required (printf "%s: name the Secret that holds it (or set secretValues.%s)" .path .inline) .secret -}}
{{- if $root.Values.checkExistingSecrets -}}
{{- $found := lookup "v1" "Secret" $root.Release.Namespace $name -}}
{{- $data := (get ($found | default dict) "data") | default dict -}}
{{- if contains "change-me" (lower (b64dec (get $data .key | default ""))) -}}
{{- fail (printf "Secret %s key %s (%s) still holds the \"change-me\" placeholder: put the real secret in it" $name .key .path) -}}
{{- end -}}
{{- end -}}
secretKeyRef: {name: {{ $name }}, key: {{ .key }}}
{{- end -}}
{{- end -}}

{{/* S3 credentials and the Milvus token: every process that reads the bucket or the index. */}}
{{- define "lookalike.storeEnv" -}}
{{- $v := .Values -}}
- name: LOOKALIKE_S3_ACCESS_KEY
  valueFrom:
    {{- include "lookalike.secretKeyRef" (dict "root" . "inline" "s3AccessKey" "secret" $v.s3.credentials.existingSecret "key" $v.s3.credentials.accessKeyKey "path" "s3.credentials.existingSecret") | nindent 4 }}
- name: LOOKALIKE_S3_SECRET_KEY
  valueFrom:
    {{- include "lookalike.secretKeyRef" (dict "root" . "inline" "s3SecretKey" "secret" $v.s3.credentials.existingSecret "key" $v.s3.credentials.secretKeyKey "path" "s3.credentials.existingSecret") | nindent 4 }}
{{- if or $v.secretValues.milvusToken $v.milvus.token.existingSecret }}
- name: LOOKALIKE_MILVUS_TOKEN
  valueFrom:
    {{- include "lookalike.secretKeyRef" (dict "root" . "inline" "milvusToken" "secret" $v.milvus.token.existingSecret "key" $v.milvus.token.key "path" "milvus.token.existingSecret") | nindent 4 }}
{{- end }}
{{- end -}}

{{/* Kafka SASL credentials (kafka.sasl.enabled): every process with a Kafka client, not the API. */}}
{{- define "lookalike.kafkaEnv" -}}
{{- $sasl := .Values.kafka.sasl -}}
- name: LOOKALIKE_KAFKA_SASL_USERNAME
  valueFrom:
    {{- include "lookalike.secretKeyRef" (dict "root" . "inline" "kafkaUsername" "secret" $sasl.existingSecret "key" $sasl.usernameKey "path" "kafka.sasl.existingSecret") | nindent 4 }}
- name: LOOKALIKE_KAFKA_SASL_PASSWORD
  valueFrom:
    {{- include "lookalike.secretKeyRef" (dict "root" . "inline" "kafkaPassword" "secret" $sasl.existingSecret "key" $sasl.passwordKey "path" "kafka.sasl.existingSecret") | nindent 4 }}
{{- end -}}

{{/* kafka-python's security_protocol for the TLS/SASL switches. */}}
{{- define "lookalike.kafkaProtocol" -}}
{{- $k := .Values.kafka -}}
{{- if and $k.tls.enabled $k.sasl.enabled -}}SASL_SSL
{{- else if $k.tls.enabled -}}SSL
{{- else if $k.sasl.enabled -}}SASL_PLAINTEXT
{{- else -}}PLAINTEXT
{{- end -}}
{{- end -}}

{{/* Pod annotations that roll the pods when the settings or the chart's Secret change. */}}
{{- define "lookalike.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end -}}
