FROM debian:12
ARG NPM_TOKEN
ENV DB_PASSWORD_FILE=/run/secrets/db_password
ENV API_KEY=${API_KEY}
ENV TOKEN_URL=https://auth.example.com/token
