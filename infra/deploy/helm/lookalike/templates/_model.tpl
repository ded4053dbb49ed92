{{/*
The serving model on Kubernetes. The app image (infra/deploy/Dockerfile, no torch) serves the ONNX
export from /cache; the model image (EXTRAS=model: timm + torch) makes it. Each pod that embeds
runs `lookalike model export` from the model image as an init container into its own /cache, the
way compose's init-model does, so the app starts with the export in place. A stored export is kept
(found before torch loads), so on a shared claim every start after the first takes a second.
*/}}

{{/* The model image: image.model.repository (default image.repository) : image.model.tag (default "<app tag>-model"). */}}
{{- define "lookalike.modelImage" -}}
{{- $i := .Values.image -}}
{{- $m := $i.model | default dict -}}
{{- $tag := $m.tag | default (printf "%s-model" ($i.tag | default .Chart.AppVersion)) -}}
{{- printf "%s:%s" ($m.repository | default $i.repository) $tag -}}
{{- end -}}

{{/*
"true" when a pod's main container needs torch, so runs on the model image: the process itself
does (torch: the reindex Job builds and exports the new model), or it embeds (model) with
model.runtime torch (GPUs). Empty otherwise. Arguments: root, model, torch.
*/}}
{{- define "lookalike.needsTorch" -}}
{{- if or .torch (and .model (eq (toString .root.Values.model.runtime) "torch")) -}}true{{- end -}}
{{- end -}}

{{/*
The export init container (a list item). Writes only to /tmp (the export's scratch folder) and
/cache (the export, timm's downloads); reads /models when a checkpoint is mounted there. It gets the
ConfigMap's settings (model, weights, cache) but no Secret: exporting reads neither S3 nor Milvus.
OMP_NUM_THREADS bounds torch to the CPU limit (its default counts the node's cores).
*/}}
{{- define "lookalike.exportContainer" -}}
{{- $v := .Values -}}
{{- $e := $v.model.export -}}
- name: model-export
  image: {{ include "lookalike.modelImage" . }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  args: [model, export]
  envFrom:
    - configMapRef: {name: {{ include "lookalike.fullname" . }}}
  env:
    - {name: LOOKALIKE_THREADS, value: {{ $e.threads | quote }}}
    - {name: OMP_NUM_THREADS, value: {{ $e.threads | quote }}}
  resources:
    {{- toYaml $e.resources | nindent 4 }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  volumeMounts:
    - {name: tmp, mountPath: /tmp}
    - {name: cache, mountPath: /cache}
    {{- if or $v.model.files.persistentVolumeClaim $v.model.files.image }}
    - {name: models, mountPath: /models, readOnly: true}
    {{- end }}
{{- end -}}
