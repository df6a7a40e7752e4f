# expect: 3, 4, 5
FROM alpine:3.20
RUN apk add git
RUN python3 -m pip install requests
RUN dnf install -y nginx
