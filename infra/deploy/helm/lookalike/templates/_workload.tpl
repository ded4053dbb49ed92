{{/*
A Deployment around "lookalike.podSpec" (the same dict, plus replicas: omitted when an autoscaler
owns the count; strategy; extraPodSpec: more pod spec YAML), and the ClusterIP Service in front of
one. One definition, so labels, selectors and checksums cannot drift between the workloads.
*/}}
{{- define "lookalike.deployment" -}}
{{- $ctx := dict "root" .root "component" .component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "lookalike.component" $ctx }}
  labels:
    {{- include "lookalike.labels" $ctx | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" .replicas) }}
  replicas: {{ .replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  {{- with .strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "lookalike.selectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "lookalike.labels" $ctx | nindent 8 }}
      annotations:
        {{- include "lookalike.checksums" .root | nindent 8 }}
    spec:
      {{- include "lookalike.podSpec" . | nindent 6 }}
      {{- with .extraPodSpec }}
      {{- . | nindent 6 }}
      {{- end }}
{{- end -}}

{{- define "lookalike.service" -}}
{{- $ctx := dict "root" .root "component" .component -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "lookalike.component" $ctx }}
  labels:
    {{- include "lookalike.labels" $ctx | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "lookalike.selectorLabels" $ctx | nindent 4 }}
  ports:
    - {name: http, port: {{ .port }}, targetPort: http, protocol: TCP}
{{- end -}}
