{{/*
One pod spec for every workload, so that security, volumes and secrets cannot drift between them.
Arguments (a dict): root, component, values (the component's values: resources, threads,
nodeSelector, tolerations, affinity), args, port (optional), probes (optional: startup, live and
ready paths), model (mounts /models and /cache; the model export runs first, _model.tpl), torch
(the process needs torch: the model image, no export init container), store (S3 and Milvus
secrets), kafka (Kafka credentials and CA), env (optional extra env YAML), grace, restartPolicy.
*/}}
{{- define "lookalike.podSpec" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $c := .values -}}
{{- $torch := include "lookalike.needsTorch" . -}}
{{- $copy := and .model $v.model.files.image (not $v.model.files.persistentVolumeClaim) -}}
{{- $export := and .model (not $torch) -}}
serviceAccountName: {{ include "lookalike.serviceAccountName" $root }}
automountServiceAccountToken: false # no process here talks to the Kubernetes API
# no <SERVICE>_PORT=tcp://... variables: a Service named "lookalike-api" would otherwise set
# LOOKALIKE_API_PORT, which the settings would read as the API's port
enableServiceLinks: false
securityContext:
  {{- toYaml $v.podSecurityContext | nindent 2 }}
{{- with .grace }}
terminationGracePeriodSeconds: {{ . }}
{{- end }}
{{- with .restartPolicy }}
restartPolicy: {{ . }}
{{- end }}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if or $copy $export }}
initContainers:
{{- end }}
{{- if $copy }}
  # the offline checkpoints, copied from an image that carries them (no shell needed, only cp); the
  # emptyDir is mounted elsewhere here, so it does not hide the image's own imagePath
  - name: models
    image: {{ $v.model.files.image }}
    imagePullPolicy: {{ $v.image.pullPolicy }}
    command: [cp, -R, {{ printf "%s/." $v.model.files.imagePath | quote }}, /lookalike-models/]
    resources:
      requests: {cpu: 50m, memory: 32Mi}
      limits: {cpu: 500m, memory: 128Mi}
    securityContext:
      {{- toYaml $v.securityContext | nindent 6 }}
    volumeMounts:
      - {name: models, mountPath: /lookalike-models}
{{- end }}
{{- if $export }}
  # `lookalike model export` from the model image into /cache: the app image has no torch to make it
  {{- include "lookalike.exportContainer" $root | nindent 2 }}
{{- end }}
containers:
  - name: {{ .component }}
    image: {{ ternary (include "lookalike.modelImage" $root) (include "lookalike.image" $root) (eq $torch "true") }}
    imagePullPolicy: {{ $v.image.pullPolicy }}
    args:
      {{- toYaml .args | nindent 6 }}
    envFrom:
      - configMapRef: {name: {{ include "lookalike.fullname" $root }}}
    env:
      {{- with $c.threads }}
      - {name: LOOKALIKE_THREADS, value: {{ . | quote }}} # torch/ONNX threads = the CPU limit, not the node's cores
      {{- end }}
      {{- if .store }}
      {{- include "lookalike.storeEnv" $root | nindent 6 }}
      {{- end }}
      {{- if and .kafka $v.kafka.sasl.enabled }}
      {{- include "lookalike.kafkaEnv" $root | nindent 6 }}
      {{- end }}
      {{- with .env }}
      {{- . | nindent 6 }}
      {{- end }}
    {{- with .port }}
    ports:
      - {name: http, containerPort: {{ . }}, protocol: TCP}
    {{- end }}
    {{- with .probes }}
    {{- include "lookalike.probes" (dict "probes" . "startupSeconds" $v.model.startupSeconds) | nindent 4 }}
    {{- end }}
    resources:
      {{- toYaml $c.resources | nindent 6 }}
    securityContext:
      {{- toYaml $v.securityContext | nindent 6 }}
    volumeMounts:
      - {name: tmp, mountPath: /tmp}
      {{- if .model }}
      - {name: cache, mountPath: /cache}
      {{- if or $v.model.files.persistentVolumeClaim $v.model.files.image }}
      - {name: models, mountPath: /models, readOnly: true}
      {{- end }}
      {{- end }}
      {{- if and .kafka $v.kafka.tls.enabled $v.kafka.tls.caSecret }}
      - {name: kafka-ca, mountPath: /etc/lookalike/kafka-ca, readOnly: true}
      {{- end }}
volumes:
  - name: tmp
    emptyDir: {sizeLimit: {{ $v.tmpSizeLimit }}}
  {{- if .model }}
  - name: cache
    {{- if $v.model.cache.persistentVolumeClaim }}
    persistentVolumeClaim: {claimName: {{ $v.model.cache.persistentVolumeClaim }}}
    {{- else }}
    emptyDir: {sizeLimit: {{ $v.model.cache.sizeLimit }}}
    {{- end }}
  {{- if $v.model.files.persistentVolumeClaim }}
  - name: models
    persistentVolumeClaim: {claimName: {{ $v.model.files.persistentVolumeClaim }}, readOnly: true}
  {{- else if $v.model.files.image }}
  - name: models
    emptyDir: {sizeLimit: {{ $v.model.cache.sizeLimit }}}
  {{- end }}
  {{- end }}
  {{- if and .kafka $v.kafka.tls.enabled $v.kafka.tls.caSecret }}
  - name: kafka-ca
    secret:
      secretName: {{ $v.kafka.tls.caSecret }}
      items: [{key: {{ $v.kafka.tls.caKey }}, path: ca.crt}]
  {{- end }}
{{- end -}}

{{/*
Probes on what the processes serve. startup: the first start may download the model
(model.startupSeconds); liveness never depends on Kafka, S3 or Milvus, so an outage of one of them
does not restart pods; readiness may (the API's /healthz answers 503 while S3 or Milvus does not).
*/}}
{{- define "lookalike.probes" -}}
startupProbe:
  httpGet: {path: {{ .probes.startup }}, port: http}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: {{ max 1 (div .startupSeconds 10) }}
livenessProbe:
  httpGet: {path: {{ .probes.live }}, port: http}
  periodSeconds: 15
  timeoutSeconds: 10
  failureThreshold: 5
readinessProbe:
  httpGet: {path: {{ .probes.ready }}, port: http}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
{{- end -}}
