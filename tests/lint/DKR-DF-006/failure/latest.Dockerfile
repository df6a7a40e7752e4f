# expect: 4
FROM debian:12 AS build

FROM registry.local:5000/app:latest
