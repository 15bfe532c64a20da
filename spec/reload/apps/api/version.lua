return "v1"
