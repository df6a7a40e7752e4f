FROM registry.local:5000/team/app:2.1
