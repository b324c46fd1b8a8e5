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

{{/* The webhook pods (selector labels: never change them either). */}}
{{- define "kpc.webhookSelectorLabels" -}}
app.kubernetes.io/name: kubelet-policy-controller
app.kubernetes.io/component: webhook
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

{{- define "kpc.webhookServiceAccountSubject" -}}
- kind: ServiceAccount
  name: kubelet-policy-controller-webhook
  namespace: {{ .Release.Namespace }}
{{- end -}}

{{/* Where the kubelet CA bundle is in the operator's container ("" when not set). */}}
{{- define "kpc.kubeletCAFile" -}}
{{- $ca := .Values.kubelet.certificateAuthority -}}
{{- if $ca.configMap.name -}}
/etc/kubelet-policy-controller/kubelet-ca/{{ $ca.configMap.key }}
{{- else if $ca.secret.name -}}
/etc/kubelet-policy-controller/kubelet-ca/{{ $ca.secret.key }}
{{- else -}}
{{ $ca.path }}
{{- end -}}
{{- end -}}

{{- define "kpc.validate" -}}
{{- if not (has .Values.certMode (list "self-managed" "cert-manager")) -}}
{{- fail "certMode must be self-managed or cert-manager" -}}
{{- end -}}
{{- if not (has .Values.configzSource (list "kubelet" "apiserver-proxy")) -}}
{{- fail "configzSource must be kubelet or apiserver-proxy" -}}
{{- end -}}
{{- $ca := .Values.kubelet.certificateAuthority -}}
{{- $sources := 0 -}}
{{- if $ca.configMap.name }}{{ $sources = add1 $sources }}{{ end -}}
{{- if $ca.secret.name }}{{ $sources = add1 $sources }}{{ end -}}
{{- if $ca.path }}{{ $sources = add1 $sources }}{{ end -}}
{{- if gt $sources 1 -}}
{{- fail "kubelet.certificateAuthority: set one of configMap.name, secret.name or path" -}}
{{- end -}}
{{- if and .Values.kubelet.insecureTLS (gt $sources 0) -}}
{{- fail "kubelet.insecureTLS skips the verification kubelet.certificateAuthority asks for: set one of them" -}}
{{- end -}}
{{- if and (eq .Values.configzSource "apiserver-proxy") (gt (float64 .Values.configz.qps) (float64 .Values.kubeAPI.qps)) -}}
{{- fail "configz.qps must not exceed kubeAPI.qps: with configzSource=apiserver-proxy every /configz fetch is an API server request" -}}
{{- end -}}
{{- end -}}
