FROM nginx:1.27 AS base
HEALTHCHECK CMD true
FROM base
