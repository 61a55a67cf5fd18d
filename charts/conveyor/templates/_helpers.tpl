{{- define "conveyor.name" -}}{{ .Release.Name }}-operator{{- end -}}
{{- define "conveyor.labels" -}}
app.kubernetes.io/name: conveyor-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
