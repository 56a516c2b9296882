{{/* Names ------------------------------------------------------------------ */}}

{{- define "ferrumq-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name: the release name when it already contains the chart
name, else "<release>-<chart>"; at most 63 characters (DNS label).
*/}}
{{- define "ferrumq-operator.fullname" -}}
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

{{- define "ferrumq-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels ----------------------------------------------------------------- */}}

{{- define "ferrumq-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferrumq-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ferrumq-operator.labels" -}}
helm.sh/chart: {{ include "ferrumq-operator.chart" . }}
{{ include "ferrumq-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ferrumq
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* ServiceAccount used by the operator pods. */}}
{{- define "ferrumq-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ferrumq-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Operator image reference: repository:tag or repository@digest. */}}
{{- define "ferrumq-operator.image" -}}
{{- $repo := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repo = printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{/* Name of the leader-election Lease. */}}
{{- define "ferrumq-operator.leaseName" -}}
{{- default (include "ferrumq-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
Namespaces the operator watches, de-duplicated, as a list; empty = all
namespaces (cluster-wide RBAC).
*/}}
{{- define "ferrumq-operator.watchNamespaces" -}}
{{- $out := list }}
{{- range .Values.watchNamespaces }}
{{- $ns := tpl . $ }}
{{- if and $ns (not (has $ns $out)) }}
{{- $out = append $out $ns }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}
