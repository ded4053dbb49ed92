{{/*
Render-time checks: a values file that cannot work stops `helm install` / `helm template` with a
message naming the value, instead of pods that crash or workers that sit idle.
*/}}
{{- define "lookalike.checks" -}}
{{- $v := .Values -}}
{{- range $name, $value := $v.secretValues -}}
{{- if contains "change-me" (lower (toString $value)) -}}
{{- fail (printf "secretValues.%s still holds the \"change-me\" placeholder: set a real secret, or leave it empty and name an existing Secret" $name) -}}
{{- end -}}
{{- end -}}
{{- range $name, $value := $v.extraEnv -}}
{{- if not (hasPrefix "LOOKALIKE_" $name) -}}
{{- fail (printf "extraEnv.%s: only LOOKALIKE_* settings belong here" $name) -}}
{{- end -}}
{{- if regexMatch "(TOKEN|PASSWORD|SECRET|ACCESS_KEY)" $name -}}
{{- fail (printf "extraEnv.%s is a secret: put it in a Secret (secretValues or an existingSecret), never in a plain env value" $name) -}}
{{- end -}}
{{- end -}}
{{- include "lookalike.checkScaling" . -}}
{{- if not (has (toString $v.model.runtime) (list "auto" "onnx" "torch")) -}}
{{- fail (printf "model.runtime %q: use auto, onnx or torch (torch runs the pods that embed on image.model)" (toString $v.model.runtime)) -}}
{{- end -}}
{{- include "lookalike.checkWeights" (dict "weights" $v.model.weights "path" "model.weights" "files" $v.model.files) -}}
{{- if $v.reindex.enabled -}}
{{- if not (has $v.reindex.mode (list "build" "rollback" "drop-previous")) -}}
{{- fail (printf "reindex.mode %q: use build, rollback or drop-previous" $v.reindex.mode) -}}
{{- end -}}
{{- if eq $v.reindex.mode "build" -}}
{{- $_ := required "reindex.model: name the timm model to re-embed with (reindex.mode build)" $v.reindex.model -}}
{{- include "lookalike.checkWeights" (dict "weights" $v.reindex.weights "path" "reindex.weights" "files" $v.model.files) -}}
{{- end -}}
{{- end -}}
{{- if and $v.ingress.enabled (not (or $v.ingress.apiHost $v.ingress.dashboardHost)) -}}
{{- fail "ingress.enabled: set ingress.apiHost and/or ingress.dashboardHost" -}}
{{- end -}}
{{- end -}}

{{/* Workers beyond the partition count sit idle; a scale-down faster than the drain cuts batches. */}}
{{- define "lookalike.checkScaling" -}}
{{- $v := .Values -}}
{{- $a := $v.autoscaling -}}
{{- $partitions := int $v.kafka.partitions -}}
{{- if lt $partitions 1 -}}
{{- fail "kafka.partitions: the topic's partition count, at least 1" -}}
{{- end -}}
{{- if $a.enabled -}}
{{- if gt (int $a.maxReplicas) $partitions -}}
{{- fail (printf "autoscaling.maxReplicas (%d) is above kafka.partitions (%d): Kafka gives each partition to one worker of the group, so the extra workers would sit idle; raise the topic's partitions first" (int $a.maxReplicas) $partitions) -}}
{{- end -}}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) -}}
{{- fail "autoscaling.minReplicas is above autoscaling.maxReplicas" -}}
{{- end -}}
{{- if and (not $a.keda) (lt (int $a.minReplicas) 1) -}}
{{- fail "autoscaling.minReplicas 0 needs KEDA (autoscaling.keda: true): a CPU HPA cannot wake workers from zero" -}}
{{- end -}}
{{- if lt (int $a.scaleDown.periodSeconds) (int $v.worker.terminationGracePeriodSeconds) -}}
{{- fail (printf "autoscaling.scaleDown.periodSeconds (%d) is shorter than worker.terminationGracePeriodSeconds (%d): a worker must finish and commit its batch before the next one is removed" (int $a.scaleDown.periodSeconds) (int $v.worker.terminationGracePeriodSeconds)) -}}
{{- end -}}
{{- else if gt (int $v.worker.replicas) $partitions -}}
{{- fail (printf "worker.replicas (%d) is above kafka.partitions (%d): the extra workers would sit idle" (int $v.worker.replicas) $partitions) -}}
{{- end -}}
{{- end -}}

{{/* A checkpoint path must lie under /models, and something must be mounted there. */}}
{{- define "lookalike.checkWeights" -}}
{{- if .weights -}}
{{- if not (hasPrefix "/models/" .weights) -}}
{{- fail (printf "%s (%s): checkpoints are read from /models (read-only); give a path under /models/" .path .weights) -}}
{{- end -}}
{{- if not (or .files.persistentVolumeClaim .files.image) -}}
{{- fail (printf "%s is set but nothing is mounted at /models: set model.files.persistentVolumeClaim or model.files.image" .path) -}}
{{- end -}}
{{- end -}}
{{- end -}}
