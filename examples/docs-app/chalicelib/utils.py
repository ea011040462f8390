def greeting():
    return "world"
