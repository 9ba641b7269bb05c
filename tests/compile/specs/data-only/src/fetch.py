print('fetch')
