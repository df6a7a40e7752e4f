FROM golang:1.22 AS build
USER root
RUN go build -o /app .

FROM gcr.io/distroless/static:nonroot
COPY --from=build /app /app
USER 65532:65532
