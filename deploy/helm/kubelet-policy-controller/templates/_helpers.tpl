{{/* Labels on every object: the ones deploy/ uses, plus Helm's. */}}
{{- define "kpc.labels" -}}
app.kubernetes.io/name: kubelet-policy-controller
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* The controller pods (selector labels: never change them, selectors are immutable). */}}
{{- define "kpc.selectorLabels" -}}
app.kubernetes.io/name: kubelet-policy-controller
app.kubernetes.io/component: controller
{{- end -}}

{{- define "kpc.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "kpc.serviceAccountSubject" -}}
- kind: ServiceAccount
  name: kubelet-policy-controller
  namespace: {{ .Release.Namespace }}
{{- end -}}

{{- define "kpc.validate" -}}
{{- if not (has .Values.certMode (list "self-managed" "cert-manager")) -}}
{{- fail "certMode must be self-managed or cert-manager" -}}
{{- end -}}
{{- if gt (float64 .Values.configz.qps) (float64 .Values.kubeAPI.qps) -}}
{{- fail "configz.qps must not exceed kubeAPI.qps: every /configz fetch is an API server request" -}}
{{- end -}}
{{- end -}}
