// placeholder (work in progress)
