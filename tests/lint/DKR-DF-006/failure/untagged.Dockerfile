# expect: 2
FROM debian
